"""The web pages: the live dashboard, the replayable timelines and the instructors' search.

Server-rendered HTML shells (Jinja2) plus a little plain JavaScript; every datum comes from
``/api/v1`` with the bearer token the visitor typed in, so the pages themselves are public.
"""
