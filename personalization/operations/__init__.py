"""Running a store: importing past orders, demo shoppers and synthetic histories, the doctor."""
