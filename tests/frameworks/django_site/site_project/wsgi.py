"""The WSGI application gunicorn serves (with --preload: made in the master, before the
workers are forked). Everything that could hold a thread or a connection is made here on
purpose, before the fork: the Backburner app, the URLconf with the mounted dashboard and job
router, and one sync call (the portal thread and its store connections) — each worker must
drop the parent's and make its own."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_project.settings")
application = get_wsgi_application()

from django.urls import get_resolver  # noqa: E402

from backburner.django import get_app  # noqa: E402

get_resolver().url_patterns  # noqa: B018  (imports the URLconf now)
jobs = get_app()
jobs.run_sync(lambda: jobs.count_jobs())
