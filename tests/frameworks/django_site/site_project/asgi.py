"""The ASGI application (uvicorn): the same project, Backburner's URLs served by the same
sync Django view."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_project.settings")
application = get_asgi_application()
