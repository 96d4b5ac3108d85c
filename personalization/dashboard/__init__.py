"""The Personalization dashboard: its view, its figures and the django-admin-charts rows."""
