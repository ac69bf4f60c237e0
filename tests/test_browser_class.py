"""A live class in two headless Chromiums on a tiny random GPT-2: the teacher opens the lesson and starts a class;
a student joins with the code and follows; the teacher moves through three steps; the student answers a predict
step, the teacher sees the count and reveals it (the class's answers beside the model's); the student explores on
their own while the teacher moves on, then follows again; following never moves the student's keyboard focus."""
import pytest
from selenium.webdriver.common.keys import Keys

from components import live_class
from components.lesson import ids as L
from components.lesson import steps
from tests.browser import open_page, set_screen, wait_until


@pytest.fixture
def second_browser(request, tmp_path):
    """A second Chromium (dash_duo's and dash_br's fixtures would share one download folder)."""
    from dash.testing.browser import Browser
    with Browser(browser="Chrome", headless=True, options=request.config.hook.pytest_setup_options(),
                 download_path=str(tmp_path / "student-downloads")) as browser:
        yield browser


@pytest.fixture
def class_store(tmp_path, monkeypatch):
    monkeypatch.setattr(live_class, "_store", live_class.FileClassStore(tmp_path / "classes"))


def text(browser, selector):
    elements = browser.find_elements(selector)
    return elements[0].text if elements else ""


def step_of(browser):
    return text(browser, f"#{L.PROGRESS}")


def click(browser, selector):
    """A click wherever the element is (the sticky lesson panel may cover it after a step scrolled the page)."""
    browser.driver.execute_script("arguments[0].click();", browser.find_element(selector))


def test_teacher_and_student(dash_duo, second_browser, tiny_model, class_store):
    teacher, student = dash_duo, second_browser
    total = len(steps.STEPS)
    open_page(teacher, tiny_model)
    wait_until(teacher, lambda: teacher.find_elements("#token-chips .token-chip"), message="the page is ready")
    click(teacher, f"#{L.OPEN}")
    wait_until(teacher, lambda: f"Step 1 of {total}" in step_of(teacher), message="lesson opened")
    click(teacher, f"#{L.START}")
    wait_until(teacher, lambda: len(text(teacher, f"#{L.INFO} .class-code")) == live_class.CODE_LENGTH)
    code = text(teacher, f"#{L.INFO} .class-code")
    assert teacher.find_elements(f"#{L.INFO} img.class-qr")
    assert "class=" not in teacher.driver.current_url  # nothing about the class in the projected address bar

    # The student types the code on their own device.
    student.driver.get(teacher.server_url + "/")
    wait_until(student, lambda: student.find_elements(f"#{L.CODE_INPUT}"))
    box = student.find_element(f"#{L.CODE_INPUT}")
    box.send_keys(code.lower(), Keys.ENTER)
    wait_until(student, lambda: f"Step 1 of {total}" in step_of(student), message="the student follows step 1")

    # Three steps: 1 -> 2 (a predict step) on the teacher's page; the student follows.
    click(teacher, f"#{L.NEXT}")
    wait_until(teacher, lambda: f"Step 2 of {total}" in step_of(teacher))
    wait_until(teacher, lambda: teacher.find_elements(f"#{steps.STEPS[1].highlight}.lesson-highlight"),
               message="the step's figure is highlighted")
    wait_until(student, lambda: f"Step 2 of {total}" in step_of(student), message="the student follows step 2")
    choices = student.find_elements(f"#{L.CHOICE} input")
    assert len(choices) == 4
    choices[0].click()
    wait_until(student, lambda: "answer is in" in text(student, f"#{L.ANSWER}"))
    wait_until(teacher, lambda: "1 answered" in text(teacher, f"#{L.STATUS}"), message="the teacher sees the count")
    click(teacher, f"#{L.REVEAL}")
    wait_until(teacher, lambda: teacher.find_elements(f"#{L.ANSWER} .lesson-class-figure .js-plotly-plot"))
    wait_until(student, lambda: "answer" in text(student, f"#{L.ANSWER}").lower()
               and student.find_elements(f"#{L.ANSWER} .lesson-class-figure"), message="the student sees the reveal")
    # Following never moves the student's keyboard focus (here on their Explore button).
    student.driver.execute_script("document.getElementById(arguments[0]).focus();", L.FOLLOW)
    for n in (3, 4):
        click(teacher, f"#{L.NEXT}")
        wait_until(teacher, lambda: f"Step {n} of {total}" in step_of(teacher))
        wait_until(student, lambda: f"Step {n} of {total}" in step_of(student), message=f"the student follows {n}")
        assert student.driver.execute_script("return document.activeElement.id") == L.FOLLOW
    assert "view=embeddings" in student.driver.current_url and f"class={code}" in student.driver.current_url

    # Exploring on their own: the teacher moves on, the student stays; following again catches up.
    click(student, f"#{L.FOLLOW}")
    wait_until(student, lambda: "Follow the teacher" in text(student, f"#{L.FOLLOW}"))
    click(teacher, f"#{L.NEXT}")
    wait_until(teacher, lambda: f"Step 5 of {total}" in step_of(teacher))
    wait_until(student, lambda: "exploring" in text(student, f"#{L.STATUS}"))
    assert f"Step 4 of {total}" in step_of(student)
    click(student, f"#{L.FOLLOW}")
    wait_until(student, lambda: f"Step 5 of {total}" in step_of(student), message="following again")
    assert "view=attention" in student.driver.current_url
    assert teacher.get_logs() == [] and student.get_logs() == []


def test_a_student_on_a_scrolled_phone_can_still_explore_and_follow(dash_duo, tiny_model, class_store):
    """The lesson panel stays in view as a phone scrolls to a figure, and never covers the class's buttons."""
    code, secret = live_class.store().create()
    step = 4
    search = steps.query(step, tiny_model.config.n_layer)
    live_class.store().publish(code, secret, search=search, lesson=step)
    set_screen(dash_duo.driver, 390, 844, mobile=True)
    open_page(dash_duo, tiny_model, **{"class": code})
    wait_until(dash_duo, lambda: f"Step {step + 1} of" in step_of(dash_duo), message="the student follows")
    follow = dash_duo.find_element(f"#{L.FOLLOW}")
    wait_until(dash_duo, lambda: follow.is_displayed())
    for _ in range(3):   # scrolled, then scrolled further to the figures below
        dash_duo.driver.execute_script("window.scrollBy(0, 700)")
        on_top = dash_duo.driver.execute_script("""
            const button = arguments[0], panel = arguments[1], box = button.getBoundingClientRect();
            const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
            return [box.top >= 0 && box.bottom <= window.innerHeight && button.contains(hit),
                    panel.getBoundingClientRect().top >= 0 && panel.getBoundingClientRect().top < 200];
        """, follow, dash_duo.find_element(f"#{L.PANEL}"))
        assert on_top == [True, True], "the Explore button is in view and not covered; the panel stays near the top"
    follow.click()   # a real tap, where the student sees the button
    wait_until(dash_duo, lambda: "Follow the teacher" in follow.text, message="exploring")
    follow.click()
    wait_until(dash_duo, lambda: "Explore on my own" in follow.text, message="following again")
