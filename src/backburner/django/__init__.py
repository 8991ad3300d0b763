"""Backburner in a Django project: enqueue from views, run the worker with Django set up,
and serve the dashboard and job router behind Django's own login.

    # settings.py
    INSTALLED_APPS = [..., "backburner.django"]
    BACKBURNER_APP = "myproject.jobs:app"          # module:attribute of your Backburner

    # views.py
    from django.db import transaction
    from backburner.django import enqueue_on_commit

    def order(request):
        with transaction.atomic():
            placed = Order.objects.create(...)
            enqueue_on_commit(send_receipt, placed.pk)   # only if the transaction commits

    # urls.py
    path("jobs/", include("backburner.django.urls")),  # dashboard; JSON API under jobs/api/

    $ python manage.py backburner_worker --concurrency 8 --queues default,mail

Everything Django lives in this package; the core imports no framework. The URL helpers
(`backburner.django.urls`) need the `dashboard` extra and a2wsgi, and are imported only when
a URLconf includes them.
"""

from __future__ import annotations

from backburner.django.settings import get_app
from backburner.django.transactions import enqueue_on_commit, shares_database

__all__ = ["enqueue_on_commit", "get_app", "shares_database"]
