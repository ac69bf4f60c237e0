"""The guided lesson: steps as data (`steps.py`), the tasks that check a step from the page's state
(`tasks.py`), predict-then-reveal questions answered by the loaded model (`questions.py`), the panel on the page
(`panel.py`) and the live class that follows a teacher (`classroom.py`, over `components/live_class.py`)."""
