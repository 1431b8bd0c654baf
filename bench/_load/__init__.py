"""The hub load test, for ``bench/load.py`` (see ``bench/README.md``, "load").

* ``data.py``: each agency's encoded files (the connector's own output for prefixes of a
  synthetic export), and each connector client's own links to them;
* ``setup.py``: the hub's chunk size, the administrator's set-up through the API (beyond
  ``bench/_hubsetup.py``) and the plain-data spec the two load processes run from;
* ``recording.py``: the request kinds and the ``Recorder`` of latencies, errors and requests;
* ``connectors.py``: the connector clients (threads of the first load process): uploads,
  interrupted and resumed;
* ``pollers.py``: the analyst and auditor clients (one event loop in the second process);
* ``checks.py``: after the load, nothing lost: listed, intact, audited; the log's growth;
* ``hublog.py``: what the hub's JSON log says about the load phase;
* ``report.py``: percentiles, the result row and its verdict, the stderr table.

Nothing here is imported by project code; it runs in the project's ``.venv``.
"""
