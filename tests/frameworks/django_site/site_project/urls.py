from django.contrib import admin
from django.urls import include, path
from shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("orders/", views.orders),
    path("orders/<int:pk>/", views.order),
    path("wait/", views.wait),
    path("stats/", views.stats),
    path("jobs/", include("backburner.django.urls")),
]
