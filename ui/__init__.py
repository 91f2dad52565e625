"""The web app's interface: handlers over :mod:`qa` (:mod:`ui.handlers`, :mod:`ui.kb`), rendering
(:mod:`ui.render`), strings in Chinese and English (:mod:`ui.i18n`), the admin rule (:mod:`ui.admin`)
and the page (:mod:`ui.layout`)."""
