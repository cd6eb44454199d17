"""Placeholder views: replaced by the approvals UI."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals/queue.html", {})


@login_required
def mine(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals/queue.html", {})


@login_required
def request_page(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "approvals/queue.html", {})
