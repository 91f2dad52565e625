"""The web app's interface: handlers over :mod:`qa` (:mod:`ui.handlers`, :mod:`ui.kb`), rendering
(:mod:`ui.render`), strings in Chinese and English (:mod:`ui.i18n`), the admin rule (:mod:`ui.admin`),
the saved conversation, its export and answer feedback (:mod:`ui.conversation`, :mod:`ui.session`,
:mod:`ui.feedback`) and the page (:mod:`ui.layout`)."""
