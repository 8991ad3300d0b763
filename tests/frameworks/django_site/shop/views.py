import json

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from backburner.django import enqueue_on_commit
from shop.jobs import app, double, record_order
from shop.models import Order


class Refused(Exception):
    pass


@csrf_exempt
@require_POST
def orders(request: HttpRequest) -> HttpResponse:
    """Creates an order and enqueues its job in one transaction; `fail=1` raises after the
    enqueue, inside the block: neither the row nor the job may remain."""
    name = request.POST["name"]
    try:
        with transaction.atomic():
            placed = Order.objects.create(name=name)
            job = enqueue_on_commit(record_order, placed.pk)
            if request.POST.get("fail"):
                raise Refused(name)
    except Refused:
        return JsonResponse({"rolled_back": name}, status=409)
    return JsonResponse({"order": placed.pk, "job": None if job is None else job.id})


@require_GET
def order(request: HttpRequest, pk: int) -> HttpResponse:
    found = Order.objects.filter(pk=pk).first()
    if found is None:
        return JsonResponse({"missing": pk}, status=404)
    return JsonResponse({"name": found.name, "processed": found.processed})


@require_GET
def wait(request: HttpRequest) -> HttpResponse:
    """A plain enqueue_sync, then the result waited for in the view."""
    job = double.enqueue_sync(int(request.GET["n"]))
    return JsonResponse({"id": job.id, "result": job.result_sync(timeout=10)})


@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    names = [o.name for o in Order.objects.order_by("pk")]
    return HttpResponse(json.dumps({"jobs": app.run_sync(app.count_jobs), "orders": names}),
                        content_type="application/json")
