"""`eucasim experiment`: replay a workload through the real EC2 API of a private simulated cloud
and record what the scheduler did (workload.py, azure.py, timescale.py, cloud.py, replay.py,
recorder.py, report.py, schedule.py)."""
