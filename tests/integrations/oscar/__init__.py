"""A real django-oscar 4.2 store with the plugin installed the way the README tells an Oscar store to.

Its own settings (tests.integrations.oscar.settings), so the main suite does not collect it:
    pytest --ds=tests.integrations.oscar.settings tests/integrations/oscar
"""
