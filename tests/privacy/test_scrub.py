"""Free-text scrubbing: the roster vocabulary, the scrubber's replacements, and no network."""

from __future__ import annotations

import socket

import polars as pl
import pytest

from privacy.freetext import FreeTextScrubber, RosterVocabulary, patterns, scrub_frame
from privacy.freetext.vocabulary import fold_case


@pytest.fixture(scope="module")
def roster() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "student_id": ["S204518", "S204519", "482913", "42"],
            "state_id": ["ST10482913", "1234567891", None, "1234567892"],
            "given_name": ["Maria", "Will", "José", "Art"],
            "family_name": ["Lopez", "Young", "de la O", "Mary-Jane O'Neil"],
            "email": [
                "maria.lopez@school.org",
                "wyoung22@school.org",
                "jose.delao.7@riverside.k12.us",
                "art_oneil@school.org",
            ],
        }
    )


@pytest.fixture(scope="module")
def vocabulary(roster: pl.DataFrame) -> RosterVocabulary:
    return RosterVocabulary.from_roster(roster, teacher_names=["Ms. Ana Ruiz"])


@pytest.fixture(scope="module")
def scrubber(vocabulary: RosterVocabulary) -> FreeTextScrubber:
    return FreeTextScrubber(vocabulary)


class TestRosterVocabulary:
    def test_names_full_names_and_their_parts(self, vocabulary: RosterVocabulary) -> None:
        for term in [
            "maria",
            "lopez",
            "maria lopez",
            "de la o",
            "mary-jane",
            "mary",
            "jane",
            "o'neil",
            "neil",
        ]:
            assert vocabulary.terms[term] == "PERSON", term

    def test_accented_names_also_match_without_accents(self, vocabulary: RosterVocabulary) -> None:
        assert vocabulary.terms["josé"] == vocabulary.terms["jose"] == "PERSON"

    def test_email_addresses_and_local_part_pieces(self, vocabulary: RosterVocabulary) -> None:
        assert vocabulary.terms["maria.lopez@school.org"] == "EMAIL"
        assert vocabulary.terms["wyoung22"] == "PERSON"  # a handle identifies as well as a name
        assert vocabulary.terms["delao"] == "PERSON"
        assert "7" not in vocabulary.terms  # digits-only pieces are years/sequence numbers

    def test_ids_but_not_short_numeric_ones(self, vocabulary: RosterVocabulary) -> None:
        assert vocabulary.terms["s204518"] == vocabulary.terms["st10482913"] == "STUDENT_ID"
        assert vocabulary.terms["482913"] == "STUDENT_ID"
        assert "42" not in vocabulary.terms  # would hit every "scored 42"

    def test_teacher_names_without_honorifics(self, vocabulary: RosterVocabulary) -> None:
        assert vocabulary.terms["ana ruiz"] == vocabulary.terms["ruiz"] == "PERSON"
        assert "ms." not in vocabulary.terms and "ms" not in vocabulary.terms

    def test_single_letters_are_skipped(self, vocabulary: RosterVocabulary) -> None:
        assert "o" not in vocabulary.terms

    def test_names_that_are_common_words_are_guarded(self, vocabulary: RosterVocabulary) -> None:
        assert {"will", "young", "art"} <= vocabulary.guarded
        assert "maria" not in vocabulary.guarded

    def test_guard_can_be_switched_off(self, roster: pl.DataFrame) -> None:
        assert RosterVocabulary.from_roster(roster, guard_common_words=False).guarded == frozenset()

    def test_missing_optional_columns_are_fine(self) -> None:
        vocabulary = RosterVocabulary.from_roster(pl.DataFrame({"given_name": ["Zoë"]}))
        assert set(vocabulary.terms) == {"zoë", "zoe"}


class TestReplacements:
    def test_the_brief_example(self, scrubber: FreeTextScrubber) -> None:
        text = "Maria Lopez (maria.lopez@school.org) struggled with fractions; call her dad on 555-0142"
        assert scrubber.scrub_text(text) == (
            "<PERSON> (<EMAIL>) struggled with fractions; call her dad on <PHONE>"
        )

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Maria's essay", "<PERSON>'s essay"),
            ("maria forgot her book", "<PERSON> forgot her book"),
            ("MARIA LOPEZ!!", "<PERSON>!!"),
            ("Jose de la O presented", "<PERSON> presented"),
            ("Mr. de la O called", "Mr. <PERSON> called"),
            ("Lovely Artwork from Mariana", "Lovely Artwork from Mariana"),
            ("Art's Artwork", "<PERSON>'s Artwork"),
            ("will need help; Will did well", "will need help; <PERSON> did well"),
            ("young readers; Young too", "young readers; <PERSON> too"),
            ("Mary-Jane O'Neil", "<PERSON>"),
            ("wyoung22 logged in late", "<PERSON> logged in late"),
            ("Ms. Ruiz noticed", "Ms. <PERSON> noticed"),
        ],
    )
    def test_names(self, scrubber: FreeTextScrubber, text: str, expected: str) -> None:
        assert scrubber.scrub_text(text) == expected

    @pytest.mark.parametrize(
        "phone",
        [
            "555-0142",
            "(212) 555-0142",
            "212.555.0199",
            "+1 212 555 0142",
            "(591)341-7776",
            "206.269.0743x9150",
            "001-273-614-8342x6281",
            "07700 900123",
            "+44 7700 900123",
            "+44(0)2074960603",
            "(0115) 496 0483",
            "+33 1 23 45 67 89",
        ],
    )
    def test_phone_formats(self, scrubber: FreeTextScrubber, phone: str) -> None:
        assert scrubber.scrub_text(f"mum on {phone} after 5pm") == "mum on <PHONE> after 5pm"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("ID S204518 and ST10482913", "ID <STUDENT_ID> and <STUDENT_ID>"),
            ("old ID LH-0042178, new 482913", "old ID <STUDENT_ID>, new <STUDENT_ID>"),
            ("SSID 9876543210 needs fixing", "SSID <STUDENT_ID> needs fixing"),
            ("see https://khanacademy.org/x?id=9.", "see <URL>."),
            ("try www.ixl.com and portfolio.example.biz/7", "try <URL> and portfolio.example.biz/7"),
            ("parent: dad99@gmail.com, x@school.internal", "parent: <EMAIL>, <EMAIL>"),
        ],
    )
    def test_ids_urls_and_emails(self, scrubber: FreeTextScrubber, text: str, expected: str) -> None:
        assert scrubber.scrub_text(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "Scored 85-90 in 2023-2024, page 42, room 214.",
            "Due 12/03/2024 at 3:15pm; 7/10 on the retest; 3.5 GPA.",
            "e.g. the home.meeting notes, i.e. nothing here.",
        ],
    )
    def test_numbers_and_dots_that_are_not_identifiers(self, scrubber: FreeTextScrubber, text: str) -> None:
        assert scrubber.scrub_text(text) == text


class TestScrubSeries:
    def test_nulls_and_empty_strings_stay(self, scrubber: FreeTextScrubber) -> None:
        result = scrubber.scrub(pl.Series("text", ["Maria ok", None, "", "call 555-0142"]))
        assert result.texts.to_list() == ["<PERSON> ok", None, "", "call <PHONE>"]
        assert result.texts.name == "text"

    def test_findings_are_counts_by_type_never_values(self, scrubber: FreeTextScrubber) -> None:
        result = scrubber.scrub(
            pl.Series(["Maria Lopez and Will (wyoung22@school.org)", "call 555-0142 or see www.ixl.com"])
        )
        assert result.findings == {"PERSON": 2, "EMAIL": 1, "PHONE": 1, "STUDENT_ID": 0, "URL": 1}
        assert all(isinstance(v, int) for v in result.findings.values())

    def test_only_texts_that_could_hold_a_pattern_reach_presidio(self, scrubber: FreeTextScrubber) -> None:
        result = scrubber.scrub(pl.Series(["Maria did well", "Will scored 85%", "call 555-0142"]))
        assert result.texts_screened_by_presidio == 1

    def test_scrub_frame_scrubs_the_named_columns_and_sums_findings(self, scrubber: FreeTextScrubber) -> None:
        frame = pl.DataFrame(
            {"student_id": ["S204518"], "text": ["Maria called 555-0142"], "note": ["ask Will Young"]}
        )
        scrubbed, findings = scrub_frame(frame, ["text", "note"], scrubber)
        assert scrubbed.row(0) == ("S204518", "<PERSON> called <PHONE>", "ask <PERSON>")
        assert findings["PERSON"] == 2 and findings["PHONE"] == 1

    def test_an_empty_roster_still_scrubs_patterns(self) -> None:
        empty = FreeTextScrubber(RosterVocabulary.from_roster(pl.DataFrame({"given_name": []})))
        assert empty.scrub_text("Maria: 555-0142") == "Maria: <PHONE>"


def test_fold_case_keeps_offsets_for_characters_that_lower_to_two() -> None:
    assert len(fold_case("İstanbul MARIA")) == len("İstanbul MARIA")
    assert fold_case("İstanbul MARIA").endswith("maria")


def test_everything_works_without_the_network(
    monkeypatch: pytest.MonkeyPatch, vocabulary: RosterVocabulary
) -> None:
    """Building the analyzer and scrubbing make no connection and download no spaCy model."""

    def refuse(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr("spacy.cli.download", refuse)
    patterns.offline_analyzer.cache_clear()
    patterns.offline_domain_extractor.cache_clear()

    scrubber = FreeTextScrubber(vocabulary, id_patterns=[r"\bQ\d{6}\b"])
    text = "Maria (maria.lopez@school.org), dad dad99@gmail.com, www.ixl.com, Q123456"
    assert scrubber.scrub_text(text) == "<PERSON> (<EMAIL>), dad <EMAIL>, <URL>, <STUDENT_ID>"
