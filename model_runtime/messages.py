"""Messages for people that the runtime writes (why a run stopped, why the engine refused one), in English and
marked for the app's translations. The runtime has no interface of its own: an exception keeps its English
template and its values apart, so the app (components/i18n.py `message`) can look the template up in the
reader's language and fill in the values as that language writes them."""
from __future__ import annotations


def N_(message: str) -> str:
    """Marks a message template for the catalogues (the gettext idiom); returns it unchanged."""
    return message


class PeopleMessage:
    """Mixin for an exception whose message is for people: `template` (English, `{name}` placeholders) and
    `values` (plain numbers and strings, so they cross a process boundary); str() is the English message."""

    def __init__(self, template: str, **values):
        self.template, self.values = template, values
        super().__init__(template.format(**values) if values else template)

    @classmethod
    def of(cls, error: BaseException):
        """`error` as this kind of message, keeping its template when it has one."""
        if isinstance(error, PeopleMessage):
            return cls(error.template, **error.values)
        return cls("{message}", message=str(error))

    def wire(self) -> tuple[str, dict]:
        return self.template, self.values
