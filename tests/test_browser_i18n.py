"""The page in other languages, in a real browser: Arabic right to left with its labels, Chinese explanations,
and the language menu reloading the page in the language chosen, keeping the prompt and settings."""
from tests.browser import open_page, script, wait_until


def page_language(dash_duo):
    return script(dash_duo, "return [document.documentElement.lang, document.documentElement.dir];")


def chips_drawn(dash_duo):
    return len(dash_duo.find_elements("#token-chips .token-chip")) > 0


def test_arabic_page_is_right_to_left_with_arabic_labels(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, lang="ar")
    wait_until(dash_duo, lambda: chips_drawn(dash_duo), message="the first example's chips")
    assert page_language(dash_duo) == ["ar", "rtl"]
    assert dash_duo.find_element("#run").text == "شغّل"
    assert "الرموز" in dash_duo.find_element(".view-tabs").text           # the Tokens tab
    # The page mirrors (the header starts at the right) while the model's own text keeps its order.
    assert script(dash_duo, "return getComputedStyle(document.querySelector('.header')).direction;") == "rtl"
    assert script(dash_duo, "return getComputedStyle(document.querySelector('#token-chips')).direction;") == "ltr"
    summary = dash_duo.find_element("#token-summary").text                # computed by a callback, in Arabic
    assert "رموز" in summary or "رمز" in summary
    assert dash_duo.get_logs() == []


def test_chinese_page_explains_in_chinese_and_the_menu_changes_the_language(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, lang="zh", temperature=0.7)
    wait_until(dash_duo, lambda: chips_drawn(dash_duo), message="the first example's chips")
    assert page_language(dash_duo) == ["zh-Hans", "ltr"]
    explanation = dash_duo.find_element("#token-summary").find_element("xpath", "..").text
    assert "字节级 BPE 分词器把文本切分成" in explanation                      # the Tokens view's explanation
    assert "个词元" in dash_duo.find_element("#token-summary").text
    wait_until(dash_duo, lambda: "lang=zh" in dash_duo.driver.current_url and "temperature=0.7" in
               dash_duo.driver.current_url, message="the shareable link keeps the language")
    dash_duo.find_element("#language").click()
    dash_duo.find_element("//*[@role='option'][normalize-space()='Español']", "XPATH").click()
    wait_until(dash_duo, lambda: page_language(dash_duo) == ["es", "ltr"], message="reloaded in Spanish")
    wait_until(dash_duo, lambda: dash_duo.find_element("#run").text == "Ejecutar")
    assert "temperature=0.7" in dash_duo.driver.current_url and "lang=es" in dash_duo.driver.current_url
