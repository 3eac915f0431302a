"""The web dashboard of `engram serve`, at /dashboard: server-rendered pages (Jinja2) over the
server's own REST API, called in-process on behalf of the signed-in key (`api`), with signed
session cookies and CSRF tokens (`session`). Every asset ships in the package: no CDN."""
