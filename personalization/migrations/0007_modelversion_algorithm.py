from django.db import migrations, models

#: Every version published before this migration runs the one algorithm its kind had then.
ALGORITHM_OF_KIND = {"next_basket": "next_basket_cnn", "autoencoder": "autoencoder", "propensity": "propensity"}


def name_algorithms(apps, schema_editor):
    ModelVersion = apps.get_model("personalization", "ModelVersion")
    for kind, algorithm in ALGORITHM_OF_KIND.items():
        ModelVersion.objects.filter(kind=kind, algorithm="").update(algorithm=algorithm)


class Migration(migrations.Migration):

    dependencies = [
        ('personalization', '0006_coupon_user_forgotten'),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='algorithm',
            field=models.CharField(blank=True, choices=[('next_basket_cnn', 'next-basket CNN'), ('tifu_knn', 'TIFU-KNN'), ('personal_frequency', 'personal frequency'), ('autoencoder', 'shopper autoencoder'), ('propensity', 'purchase propensity')], max_length=32, verbose_name='algorithm'),
        ),
        migrations.RunPython(name_algorithms, migrations.RunPython.noop),
    ]
