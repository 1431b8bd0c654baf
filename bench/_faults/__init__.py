"""The fault loop behind ``bench/faults.py`` (see ``bench/README.md``, "faults").

* ``procs.py``: ``hub serve`` and ``hub worker`` processes, each in its own process group,
  started, SIGKILLed and always stopped at the end;
* ``world.py``: the hub under test (data directory, agencies, agreement, project, users),
  distinct encoded files to upload and the extract request to build;
* ``ledger.py``: what the hub acknowledged, and the client-visible errors, as the clients saw
  them;
* ``steps.py``: the workload steps a kill interrupts (an upload, a linkage run, an extract
  build, a burst of audited requests) and their recovery;
* ``checks.py``: the invariants after recovery (nothing acknowledged lost, nothing half-written
  visible, the log verifies and only grows);
* ``loop.py``: the bounded loop of rounds;
* ``diskfull.py``: the data directory on a small tmpfs that fills up;
* ``pgrestart.py``: a private PostgreSQL cluster restarted under a running hub.

Nothing here is imported by project code; it runs in the project's ``.venv``.
"""
