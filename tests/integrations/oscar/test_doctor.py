"""`manage.py personalization_doctor` on the Oscar store: products, stock, prices, categories, a live
order and the models are read through the preset; what the store's own set-up lacks is named."""
import json

import pytest
from celery import current_app
from django.core.management import call_command

from tests.integrations.oscar import store
from tests.integrations.oscar.test_recommendations import catalogue, shoppers, trained  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def doctor(capsys):
    """(exit status, {finding id: finding}) of one run of the command."""
    try:
        call_command("personalization_doctor", "--format", "json", "--timeout", "1")
        status = 0
    except SystemExit as exited:
        status = exited.code
    findings = json.loads(capsys.readouterr().out)
    return status, {finding["id"]: finding for finding in findings}


def test_the_doctor_reads_the_oscar_store_through_the_preset(
    client, catalogue, trained, capsys, settings, tmp_path, monkeypatch  # noqa: F811
):
    store.shipping_country()
    client.force_login(trained["dairy"][0])
    store.add_to_basket(client, catalogue["Milk"])
    store.check_out(client)

    status, found = doctor(capsys)

    assert {"doctor.OK001", "doctor.OK002", "doctor.OK004", "doctor.OK005"} <= set(found)
    assert not {"doctor.W002", "doctor.W003", "doctor.W004"} & set(found)  # price, stock, category read
    assert "1 are inactive and 1 out of stock" in found["doctor.I001"]["message"]
    # This store keeps each process's own memory as its cache while tasks would go to workers.
    assert status == 1 and found["doctor.E004"]["level"] == "error"

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}}
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)

    status, found = doctor(capsys)

    assert status == 0 and not [f for f in found.values() if f["level"] == "error"]
