"""The web side of training runs; the engine itself is app.worker.training.

- `backend`: the job interface (`JobBackend`) and the choice of backend;
- `local`, `local_worker`: the default backend, worker processes beside the server;
- `celery_app`, `celery_backend`, `celery_tasks`, `celery_worker`: the scale-out backend, runs
  on `cvprep worker` processes over Redis (the Celery app and its settings, the web side, the
  run task and what a delivered run id does to the row, the worker command);
- `execute`: train one claimed run and write what happens into its row (every backend);
- `validate`, `limits`: what a request's config must pass before it is queued;
- `dispatch`: launch, cancel, delete (what the routes call);
- `form`, `prefill`: the New-run form and what it starts from;
- `present`: what the run page shows, charts as data;
- `files`: a run's folder and the files that may be downloaded.
"""
