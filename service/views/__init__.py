"""Views by audience: each module is one blueprint for one kind of reader (citizens, staff).

The pure core (matching, deadlines, reports, feedback) lives beside this package and
imports no Flask; storage is ``service/db.py`` and ``service/storage.py``.
"""
