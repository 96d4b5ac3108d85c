# Placements and coupons were added side by side on 0002; this joins the two branches.
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("personalization", "0003_coupons"),
        ("personalization", "0003_placements"),
    ]

    operations = []
