"""The reviewers' side of the staff workspace: answering escalated tickets."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("review", __name__, url_prefix="/staff")
