"""The guided lesson: steps as data (`steps.py`), the tasks that check a step from the page's state
(`tasks.py`), predict-then-reveal questions answered by the loaded model (`questions.py`), the panel on the page
(`panel.py`) and the live class that follows a teacher (`classroom.py`, over `components/live_class.py`)."""
from dash import html

from . import classroom, panel


def section() -> html.Div:
    """The page's one entry point: the Lesson button and class controls; the class's bar and the lesson panel,
    which stay in view together while the page scrolls (so the panel never covers Explore / Follow); the class's
    code and QR code."""
    return html.Div([html.Div([panel.open_button(), classroom.controls()], className="lesson-bar"),
                     html.Div([classroom.bar(), panel.section()], className="lesson-sticky"),
                     classroom.section()], className="lesson")


def register(app) -> None:
    panel.register(app)
    classroom.register(app)
