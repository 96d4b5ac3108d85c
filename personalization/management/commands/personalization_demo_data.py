"""manage.py personalization_demo_data: demo shoppers with realistic histories over the store's catalog."""
from django.core.management.base import BaseCommand, CommandError

from personalization.operations import demo, history, synthetic


class Command(BaseCommand):
    help = (
        "Creates demo shoppers (user accounts shopper1..3 with password 'demo', then demo_00004...) "
        "and records synthetic purchases, views and cart additions for them over the store's products. "
        "With --csv, writes the purchase histories to a CSV file instead (personalization_import's format) "
        "and changes nothing in the database. With --histories, the demo shoppers are those of a file of "
        "real order histories instead, all with password 'demo'."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, help="number of demo shoppers (default 600)")
        parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--csv", metavar="OUT.csv", help="write the histories to this CSV file instead")
        source.add_argument(
            "--histories",
            metavar="ORDERS.csv",
            help="a file in personalization_import's format whose product ids are the store's: each of its "
            "shoppers becomes a demo shopper with its orders, moved in time so that the latest is this week",
        )
        existing = parser.add_mutually_exclusive_group()
        existing.add_argument("--replace", action="store_true", help="delete earlier demo shoppers and events first")
        existing.add_argument(
            "--if-empty", action="store_true", help="do nothing when demo shoppers exist (default: that is an error)"
        )

    def handle(self, *args, users, seed, csv, replace, if_empty, histories=None, **options):
        if histories:
            if users is not None:
                raise CommandError("--users and --histories cannot go together: the file's shoppers are the demo's.")
            return self.create_from(histories, replace, if_empty)
        users = 600 if users is None else users
        if users < 1:
            raise CommandError("--users must be at least 1.")
        try:
            if csv:
                self.write_csv(users, seed, csv)
            else:
                self.create(users, seed, replace, if_empty)
        except demo.NoProducts as exc:
            raise CommandError(
                f"Cannot create demo data: {exc}. Add products first "
                "(in the demo store: `python manage.py seed_catalog`)."
            ) from exc

    def write_csv(self, users, seed, path):
        frame = demo.demo_histories(users, seed)
        try:
            frame.to_csv(path, index=False)
        except OSError as exc:
            raise CommandError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
        self.stdout.write(f"Wrote {len(frame)} order lines of {users} shoppers to {path}.")
        self.stdout.write(f"Repeat share of the last baskets: {synthetic.repeat_share(frame):.2f}")

    def create_from(self, path, replace, if_empty):
        try:
            result = demo.create_demo_shoppers_from(path, replace=replace, say=self.stdout.write)
        except history.InvalidRow as exc:
            raise CommandError(f"{path}, {exc}") from exc
        except history.UnreadableFile as exc:
            raise CommandError(f"{path}: {exc}") from exc
        if self.nothing_done(result, if_empty):
            return
        self.stdout.write(f"Created {result.shoppers} demo shoppers with {result.purchases} purchases from {path}.")
        self.offer_coupons_and_logins(result)

    def nothing_done(self, result, if_empty):
        """Whether demo shoppers existed (result None): said with --if-empty, an error without."""
        if result is not None:
            return False
        if if_empty:
            self.stdout.write("Demo shoppers already exist; nothing done.")
            return True
        raise CommandError("Demo shoppers already exist. Use --replace to create them anew, or --if-empty.")

    def create(self, users, seed, replace, if_empty):
        result = demo.create_demo_data(users, seed, replace=replace, say=self.stdout.write)
        if self.nothing_done(result, if_empty):
            return
        self.stdout.write(
            f"Created {result.shoppers} demo shoppers with {result.purchases} purchases "
            f"and {result.browsing} views and cart additions, "
            f"and {result.recommendation_events} synthetic recommendation impressions and clicks."
        )
        self.stdout.write(f"Repeat share of the last baskets: {result.repeat_share:.2f} (about 2/3 is realistic)")
        self.offer_coupons_and_logins(result)

    def offer_coupons_and_logins(self, result):
        campaign, issued, coupon = demo.create_demo_campaign()
        self.stdout.write(
            f"Coupon campaign '{campaign}': {issued.issued} coupons issued, {issued.held_out} shoppers held out; "
            + (f"shopper1's coupon is {coupon.code}." if coupon else "shopper1 has no coupon.")
        )
        if result.logins:
            names = ", ".join(result.logins[:3])
            if len(result.logins) > 3:
                names += f" (or {result.logins[3]} to {result.logins[-1]})"
            self.stdout.write(self.style.SUCCESS(f"Log in as {names} with password '{demo.LOGIN_PASSWORD}'."))
