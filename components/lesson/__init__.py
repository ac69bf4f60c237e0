"""The guided lesson: steps as data (`steps.py`), the tasks that check a step from the page's state
(`tasks.py`), predict-then-reveal questions answered by the loaded model (`questions.py`), the panel on the page
(`panel.py`) and the live class that follows a teacher (`classroom.py`, over `components/live_class.py`)."""
from dash import html

from . import classroom, panel


def section() -> html.Div:
    """The page's one entry point: the Lesson button and class controls, the lesson panel, the class's bar."""
    return html.Div([html.Div([panel.open_button(), classroom.controls()], className="lesson-bar"),
                     panel.section(), classroom.section()], className="lesson")


def register(app) -> None:
    panel.register(app)
    classroom.register(app)
