"""`make bench`: server-side latency of KetaClinic pages against a 10,000-patient database, plus
the JSON API under gunicorn. Entry point: `python -m bench.run` (see bench/run.py); pages to
measure are listed in bench/pages.py."""
