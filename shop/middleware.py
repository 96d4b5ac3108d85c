"""The demo store's choice of language."""
from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.cache import patch_vary_headers


class ChosenLanguageMiddleware(LocaleMiddleware):
    """Activates the language the visitor picked in the footer (Django's language cookie), else LANGUAGE_CODE.

    Unlike Django's LocaleMiddleware it does not follow the browser's Accept-Language, so that
    `LANGUAGE_CODE=zh-hans make demo` shows the whole demo, admin included, in Chinese in any browser.
    """

    def process_request(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        try:
            language = translation.get_supported_language_variant(chosen) if chosen else settings.LANGUAGE_CODE
        except LookupError:  # a cookie naming a language the store does not offer
            language = settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()

    def process_response(self, request, response):
        response = super().process_response(request, response)
        patch_vary_headers(response, ("Cookie",))
        return response
