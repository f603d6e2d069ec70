from __future__ import annotations

import json
import sys

import phonenumbers
import pytest

from clicktochat.optin_words import COUNTRY_NAMES, WORDS, country_names, default_country

# Regions phonenumbers has no name for in any language
NAMED_HERE = {
    "AC": {"en": "Ascension Island", "it": "Isola di Ascensione", "es": "Isla Ascensión", "de": "Ascension",
           "fr": "Île de l'Ascension", "pt": "Ilha de Ascensão"},
    "TA": dict.fromkeys(WORDS, "Tristan da Cunha"),
    "XK": dict.fromkeys(WORDS, "Kosovo"),
}  # fmt: skip

# Where phonenumbers' name is wrong for a form's language (an English name in another language's
# list, a missing accent, a name the country no longer uses, odd capitals or brackets): found by
# an independent review of the opt-in form's country list. Each is the name the country goes by
# now in that language (the UN's, or the language's own usage where it differs).
CORRECTED = {
    "en": {"CD": "Congo (Democratic Republic)", "IM": "Isle of Man", "MK": "North Macedonia", "SZ": "Eswatini",
           "KN": "Saint Kitts and Nevis", "PM": "Saint Pierre and Miquelon", "SJ": "Svalbard and Jan Mayen",
           "ST": "São Tomé and Príncipe", "TC": "Turks and Caicos Islands", "VC": "Saint Vincent and the Grenadines",
           "WF": "Wallis and Futuna"},  # "Wallis And Futuna", beside "Antigua and Barbuda" (a new user's)
    "de": {"MK": "Nordmazedonien", "SZ": "Eswatini", "CZ": "Tschechien", "RE": "Réunion"},
    "es": {"MK": "Macedonia del Norte", "SZ": "Esuatini"},
    "fr": {"IM": "Île de Man", "US": "États-Unis", "VG": "Îles Vierges britanniques",
           "VI": "Îles Vierges des États-Unis", "MK": "Macédoine du Nord", "SZ": "Eswatini", "CV": "Cap-Vert",
           "BJ": "Bénin", "KG": "Kirghizistan", "TW": "Taïwan", "AE": "Émirats arabes unis", "EC": "Équateur",
           "EG": "Égypte", "ER": "Érythrée", "ET": "Éthiopie", "GQ": "Guinée équatoriale"},
    "it": {"MK": "Macedonia del Nord", "SZ": "Eswatini", "RE": "Riunione", "VG": "Isole Vergini britanniche",
           "VI": "Isole Vergini americane"},
    "pt": {"SS": "Sudão do Sul", "BQ": "Países Baixos Caribenhos", "SX": "São Martinho (Países Baixos)",
           "HK": "Hong Kong", "MO": "Macau", "MM": "Mianmar", "MK": "Macedônia do Norte", "SZ": "Essuatíni",
           "BH": "Bahrein", "BY": "Bielorrússia"},
}  # fmt: skip


def names_from_phonenumbers() -> dict[str, dict[str, str]]:
    """{language: {region: name}} for the forms' languages, from phonenumbers' locale data (a
    name given as "*xx" is language xx's; "aa" holds the default, English)."""
    from phonenumbers.geodata.locale import LOCALE_DATA  # some 70 MB: why the server reads the JSON instead

    def name(region: str, lang: str) -> str:
        value = LOCALE_DATA.get(region, {}).get(lang, "*aa" if lang != "aa" else "")
        return name(region, value[1:]) if value.startswith("*") else value

    out: dict[str, dict[str, str]] = {}
    for lang in WORDS:
        out[lang] = {}
        for region in sorted(phonenumbers.SUPPORTED_REGIONS):
            out[lang][region] = (CORRECTED[lang].get(region) or name(region, lang)
                                 or NAMED_HERE.get(region, {}).get(lang, ""))  # fmt: skip
    return out


def test_country_names_are_phonenumbers_own_corrected_and_none_is_missing() -> None:
    shipped = json.loads(COUNTRY_NAMES.read_text(encoding="utf-8"))
    assert shipped == names_from_phonenumbers(), "run: python tests/test_optin_words.py (phonenumbers changed)"
    for lang in WORDS:
        named = country_names(lang)
        assert len(named) == len(phonenumbers.SUPPORTED_REGIONS)
        assert all(name and name != region for region, _, name in named), lang
    assert [name for region, _, name in country_names("it") if region in ("AT", "IT", "BL")] == [
        "Austria", "Italia", "Saint Barthélemy"]  # fmt: skip
    german = [name for _, _, name in country_names("de")]
    assert german.index("Österreich") < german.index("Palau")  # Ö is looked up as O
    english = [name for _, _, name in country_names("en")]  # the Congo under C, not "The Democratic..." under T
    assert not [name for name in english if " And " in name or " The " in name]
    assert english.index("Colombia") < english.index("Congo (Democratic Republic)") < english.index("Costa Rica")
    french = [name for _, _, name in country_names("fr")]
    assert french.index("Estonie") < french.index("États-Unis") < french.index("Éthiopie")


def test_importing_the_opt_in_words_does_not_load_phonenumbers_geodata() -> None:
    import subprocess

    code = "import sys, clicktochat.app, clicktochat.cli; print('phonenumbers.geodata' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.parametrize(("languages", "lang", "region", "expected"), [
    ("en,it-IT", "en", "", "IT"),  # a new user: the page's bare "en" beat the browser's it-IT (an Italian number, +44)
    ("it-IT,it;q=0.9,en;q=0.8", "it", "", "IT"),
    ("pt-BR", "pt", "", "BR"),
    ("en", "en", "IT", "IT"),  # a bare language says less than the server's region
    ("en", "en", "", "GB"),
    ("de;q=0.9", "en", "", "DE"),
    ("", "fr", "", "FR"),
    ("", "en", "", "GB"),
    ("xx", "xx", "", ""),
    ("en-XX,es", "en", "", "GB"),  # an unknown region is no region: its language counts
    ("en-US-x-twain", "en", "", "US"),  # what follows a singleton is never the region
    ("zh-Hant-TW", "en", "", "TW"),  # a script before the region
    ("en-GB;q=0.1, it-IT", "en", "", "IT"),  # the most wanted first, not the first written
    ("de-DE;q=0, fr", "en", "", "FR"),  # q=0: refused
    ("pt_BR", "pt", "", "BR"),
])  # fmt: skip
def test_the_number_fields_country(languages: str, lang: str, region: str, expected: str) -> None:
    assert default_country(languages, lang, region) == expected


if __name__ == "__main__":  # write the names again from phonenumbers (after upgrading it)
    COUNTRY_NAMES.write_text(json.dumps(names_from_phonenumbers(), ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")  # fmt: skip
