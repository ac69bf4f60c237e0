"""Component ids of the lesson panel and the live class (one place, so the two modules and the tests agree)."""

# Lesson panel
OPEN = "lesson-open"
PANEL = "lesson-panel"
PROGRESS = "lesson-progress"
BODY = "lesson-body"
TASK = "lesson-task"
QUESTION_BOX = "lesson-question-box"
QUESTION = "lesson-question"
CHOICE = "lesson-choice"          # dcc.RadioItems: the learner's prediction (a choice's index)
REVEAL = "lesson-reveal"
ANSWER = "lesson-answer"          # the revealed answer, or what happened to a class answer
CLASS_FIGURE_TEXT = "lesson-class-figure-text"  # the class-answers chart in words (its text alternative)
BACK, NEXT, CLOSE = "lesson-back", "lesson-next", "lesson-close"
SHOWN = "lesson-shown"            # dcc.Store: the step the panel shows (its choice and answer stay while it does)
HIGHLIGHTED = "lesson-highlighted"  # dcc.Store: output slot of the clientside callback that highlights

# Live class
CLASS = "class-membership"     # dcc.Store (session): {"role": "teacher", "code", "secret"} or
                               # {"role": "student", "code", "voter", "following"}; None outside a class
SEEN = "class-seen"            # dcc.Store: {"version", "revealed"} of the class state this page last applied
PUBLISHED = "class-published"  # dcc.Store: output slot of the teacher's publishing callback
POLL = "class-poll"
START, END, FOLLOW = "class-start", "class-end", "class-follow"
CODE_INPUT, JOIN = "class-code", "class-join"
INFO, STATUS, MESSAGE = "class-info", "class-status", "class-message"
