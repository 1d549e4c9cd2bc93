"""Text search as the manual shows it: a text index, `$text` with terms, phrases and negations,
relevance through `{$meta: "textScore"}`, in find and aggregate."""

from __future__ import annotations

import pytest
from pymongo import TEXT
from pymongo.errors import OperationFailure

ARTICLES = [
    {"_id": 1, "subject": "coffee", "author": "xyz", "views": 50},
    {"_id": 2, "subject": "Coffee Shopping", "author": "efg", "views": 5},
    {"_id": 3, "subject": "Baking a cake", "author": "abc", "views": 90},
    {"_id": 4, "subject": "baking", "author": "xyz", "views": 100},
    {"_id": 5, "subject": "Café Con Leche", "author": "abc", "views": 200},
    {"_id": 6, "subject": "Сырники", "author": "jkl", "views": 80},
    {"_id": 7, "subject": "coffee and cream", "author": "efg", "views": 10},
    {"_id": 8, "subject": "Cafe con Leche", "author": "xyz", "views": 10},
]


@pytest.fixture
def articles(db):
    db.articles.insert_many(ARTICLES)
    db.articles.create_index([("subject", TEXT)])
    return db.articles


def ids(cursor):
    return sorted(d["_id"] for d in cursor)


def test_terms_stems_case_and_diacritics(articles):
    assert ids(articles.find({"$text": {"$search": "coffee"}})) == [1, 2, 7]
    # Any of the terms; "shop" finds "Shopping" through the English stemmer.
    assert ids(articles.find({"$text": {"$search": "bake coffee cake"}})) == [1, 2, 3, 4, 7]
    assert ids(articles.find({"$text": {"$search": "shop"}})) == [2]
    # Case and diacritics are ignored.
    assert ids(articles.find({"$text": {"$search": "CAFE"}})) == [5, 8]
    # A phrase must appear as written; a negated term must not.
    assert ids(articles.find({"$text": {"$search": '"coffee shop"'}})) == [2]
    assert ids(articles.find({"$text": {"$search": "coffee -shop"}})) == [1, 7]
    # Stop words alone find nothing.
    assert ids(articles.find({"$text": {"$search": "and the"}})) == []
    # With other conditions, and counted.
    assert ids(articles.find({"$text": {"$search": "coffee"}, "views": {"$gt": 8}})) == [1, 7]
    assert articles.count_documents({"$text": {"$search": "coffee"}}) == 3


def test_relevance_in_find_and_aggregate(articles):
    found = list(articles.find({"$text": {"$search": "coffee"}}, {"score": {"$meta": "textScore"}}).sort([("score", {"$meta": "textScore"})]))
    assert [d["_id"] for d in found][0] == 1  # the shortest subject that holds the term
    assert all(d["score"] > 0 for d in found)
    scores = [d["score"] for d in found]
    assert scores == sorted(scores, reverse=True)
    # A $meta-only projection returns whole documents, and no result carries the internal field.
    assert set(found[0]) == {"_id", "subject", "author", "views", "score"}
    plain = articles.find_one({"$text": {"$search": "coffee"}})
    assert set(plain) == {"_id", "subject", "author", "views"}
    pipeline = [
        {"$match": {"$text": {"$search": "cake coffee"}}},
        {"$sort": {"score": {"$meta": "textScore"}}},
        {"$project": {"subject": 1, "score": {"$meta": "textScore"}}},
        {"$limit": 2},
    ]
    top = list(articles.aggregate(pipeline))
    assert len(top) == 2 and top[0]["score"] >= top[1]["score"] and set(top[0]) == {"_id", "subject", "score"}
    # The score is metadata, as in MongoDB: it survives a $project that does not name it.
    later = list(articles.aggregate([
        {"$match": {"$text": {"$search": "cake coffee"}}},
        {"$project": {"subject": 1}},
        {"$sort": {"score": {"$meta": "textScore"}}},
        {"$addFields": {"score": {"$meta": "textScore"}}},
    ]))
    assert [d["score"] for d in later] == sorted((d["score"] for d in later), reverse=True) and all(d["score"] > 0 for d in later)
    assert all(set(d) == {"_id", "subject", "score"} for d in later)
    grouped = list(articles.aggregate([{"$match": {"$text": {"$search": "coffee"}}}, {"$group": {"_id": "$author", "n": {"$sum": 1}}}]))
    assert sorted((d["_id"], d["n"]) for d in grouped) == [("efg", 2), ("xyz", 1)]


def test_weights_wildcard_and_writes(db):
    db.posts.insert_many([
        {"_id": 1, "title": "tea", "body": "all about coffee"},
        {"_id": 2, "title": "coffee", "body": "all about tea"},
    ])
    db.posts.create_index([("title", TEXT), ("body", TEXT)], weights={"title": 10})
    listed = db.posts.index_information()["title_text_body_text"]
    assert listed["key"] == [("_fts", "text"), ("_ftsx", 1)] and listed["weights"] == {"body": 1, "title": 10}
    ranked = [d["_id"] for d in db.posts.find({"$text": {"$search": "coffee"}}, {"s": {"$meta": "textScore"}}).sort([("s", {"$meta": "textScore"})])]
    assert ranked == [2, 1]
    # The index follows updates and deletes.
    db.posts.update_one({"_id": 1}, {"$set": {"body": "all about milk"}})
    assert ids(db.posts.find({"$text": {"$search": "coffee"}})) == [2]
    assert db.posts.update_many({"$text": {"$search": "tea"}}, {"$set": {"hot": True}}).modified_count == 2
    # Nothing of the search is stored: the documents hold what they held, and the update.
    stored = list(db.posts.aggregate([{"$project": {"n": {"$size": {"$objectToArray": "$$ROOT"}}}}]))
    assert sorted(d["n"] for d in stored) == [4, 4]
    found = db.posts.find_one_and_update({"$text": {"$search": "tea"}, "_id": 2}, {"$set": {"cold": False}}, return_document=True)
    assert "cold" in found and not any(key.startswith("$__") for key in found)
    # findAndModify returns the relevance a projection asks for, of the document the search found.
    scored = db.posts.find_one_and_update({"$text": {"$search": "tea"}, "_id": 2}, {"$set": {"cold": True}},
                                          projection={"s": {"$meta": "textScore"}, "cold": 1}, return_document=True)
    expected = db.posts.find_one({"$text": {"$search": "tea"}, "_id": 2}, {"s": {"$meta": "textScore"}})["s"]
    assert scored["cold"] is True and scored["s"] == expected > 0 and set(scored) == {"_id", "s", "cold"}
    removed = db.posts.find_one_and_delete({"$text": {"$search": "tea"}, "_id": 1}, projection={"s": {"$meta": "textScore"}, "title": 0})
    assert removed["s"] > 0 and "title" not in removed and not any(key.startswith("$__") for key in removed)
    db.posts.insert_one({"_id": 1, "title": "Coffee", "body": "all about milk tea"})
    db.posts.delete_one({"_id": 2})
    assert ids(db.posts.find({"$text": {"$search": "coffee tea"}})) == [1]
    db.everything.insert_many([{"_id": 1, "a": {"b": "nested words"}}, {"_id": 2, "c": ["list", "of", "words"]}, {"_id": 3, "n": 5}])
    db.everything.create_index([("$**", TEXT)])
    assert ids(db.everything.find({"$text": {"$search": "words"}})) == [1, 2]
    assert db.everything.index_information()["$**_text"]["weights"] == {"$**": 1}
    # The key listIndexes shows drops the index, as in MongoDB.
    db.command("dropIndexes", "everything", index={"_fts": "text", "_ftsx": 1})
    assert list(db.everything.index_information()) == ["_id_"]


def test_errors(db, articles):
    db.plain.insert_one({"a": "coffee"})
    with pytest.raises(OperationFailure) as error:
        list(db.plain.find({"$text": {"$search": "coffee"}}))
    assert error.value.code == 27
    with pytest.raises(OperationFailure) as error:
        articles.create_index([("author", TEXT)])
    assert error.value.code == 85
    with pytest.raises(OperationFailure):
        list(articles.find({"$or": [{"$text": {"$search": "coffee"}}, {"views": 5}]}))
    with pytest.raises(OperationFailure) as error:
        list(articles.find({"$text": {"$search": "coffee", "$caseSensitive": 1}}))
    assert error.value.code == 14
    with pytest.raises(OperationFailure) as error:
        list(articles.find({"$text": {"$search": "coffee", "$language": "klingon"}}))
    assert error.value.code == 2
    plan = articles.find({"$text": {"$search": "coffee"}}).explain()
    assert "TEXT" in str(plan["queryPlanner"]["winningPlan"])
    # listIndexes shows a text index as MongoDB does.
    index = [i for i in articles.list_indexes() if i["name"] == "subject_text"][0]
    assert dict(index) == {
        "v": 2, "key": {"_fts": "text", "_ftsx": 1}, "name": "subject_text", "weights": {"subject": 1},
        "default_language": "english", "language_override": "language", "textIndexVersion": 3,
    }
    # Dropping the index ends text search; a new one (on another field) starts it again.
    articles.drop_index("subject_text")
    with pytest.raises(OperationFailure) as error:
        list(articles.find({"$text": {"$search": "coffee"}}))
    assert error.value.code == 27
    articles.create_index([("author", TEXT)])
    assert ids(articles.find({"$text": {"$search": "xyz"}})) == [1, 4, 8]
    articles.rename("renamed")
    assert ids(db.renamed.find({"$text": {"$search": "efg"}})) == [2, 7]
    db.renamed.drop()
    assert "renamed" not in db.list_collection_names()


def test_search_syntax_as_mongodb_reads_it(articles, db):
    # A negated phrase excludes; negated stop words are ignored; punctuation splits words.
    assert ids(articles.find({"$text": {"$search": 'coffee -"coffee shop"'}})) == [1, 7]
    assert ids(articles.find({"$text": {"$search": "coffee -the"}})) == [1, 2, 7]
    assert ids(articles.find({"$text": {"$search": "coffee,cake"}})) == [1, 2, 3, 7]
    assert ids(articles.find({"$text": {"$search": "c0:coffee"}})) == [1, 2, 7]
    assert ids(articles.find({"$text": {"$search": "The, coffee"}})) == [1, 2, 7]
    assert ids(articles.find({"$text": {"$search": "cof\x00fee"}})) == []
    with pytest.raises(OperationFailure) as error:
        list(articles.find({"$text": {"$search": " ".join(f"w{i}" for i in range(1500))}}))
    assert error.value.code == 2
    # $text only in the first $match, and never stored through a pipeline's output.
    with pytest.raises(OperationFailure) as error:
        list(articles.aggregate([{"$match": {"views": {"$gt": 1}}}, {"$match": {"$text": {"$search": "coffee"}}}]))
    assert error.value.code == 17313
    articles.aggregate([{"$match": {"$text": {"$search": "coffee"}}}, {"$group": {"_id": None, "all": {"$push": "$$ROOT"}}}, {"$out": "saved"}])
    saved = db.saved.find_one()
    assert len(saved["all"]) == 3 and all(set(d) == {"_id", "subject", "author", "views"} for d in saved["all"])


def scored(collection, search, **options):
    """(_id, score) of each match, best first, as the manual prints them."""
    query = {"$text": {"$search": search, **options}}
    cursor = collection.find(query, {"score": {"$meta": "textScore"}}).sort([("score", {"$meta": "textScore"}), ("_id", 1)])
    return [(d["_id"], round(d["score"], 6)) for d in cursor]


def test_manual_examples_languages_case_and_diacritics(articles):
    # The $text reference page's examples, with the results it prints.
    assert ids(articles.find({"$text": {"$search": "leche", "$language": "es"}})) == [5, 8]
    assert ids(articles.find({"$text": {"$search": "сы́рники CAFÉS"}})) == [5, 6, 8]
    assert ids(articles.find({"$text": {"$search": "Coffee", "$caseSensitive": True}})) == [2]
    assert ids(articles.find({"$text": {"$search": '"Café Con Leche"', "$caseSensitive": True}})) == [5]
    assert ids(articles.find({"$text": {"$search": "Coffee -shop", "$caseSensitive": True}})) == [2]
    assert ids(articles.find({"$text": {"$search": "CAFÉ", "$diacriticSensitive": True}})) == [5]
    assert ids(articles.find({"$text": {"$search": "leches -cafés", "$diacriticSensitive": True}})) == [8]
    # A phrase is matched in the text as written (case and diacritics aside), not by stems.
    assert ids(articles.find({"$text": {"$search": '"cafe con"'}})) == [5, 8]
    assert ids(articles.find({"$text": {"$search": '"coffee shops"'}})) == []


def test_scores_are_mongodbs(articles, db):
    # MongoDB's numbers: "Baking a cake" scores 0.75 for "cake" (two words that are not stop
    # words, one of them the term); a one-word subject scores 1, or 1.1 when the word is its
    # own stem.
    assert scored(articles, "cake") == [(3, 0.75)]
    assert scored(articles, "coffee") == [(1, 1.0), (2, 0.75), (7, 0.75)]
    assert scored(articles, "baking") == [(4, 1.0), (3, 0.75)]
    db.words.insert_many([{"_id": 1, "t": "cake"}, {"_id": 2, "t": "cake cake cake"}, {"_id": 3, "t": ["cake", "tea cake"]}])
    db.words.create_index([("t", TEXT)])
    # A repeated term adds 1, 1/2, 1/4, ...; each array element is scored on its own.
    assert scored(db.words, "cake") == [(3, 1.85), (2, 1.75), (1, 1.1)]
    # Weights multiply, and the terms of one search add up.
    db.posts.insert_many([{"_id": 1, "title": "green tea", "body": "tea from the hills"}])
    db.posts.create_index([("title", TEXT), ("body", TEXT)], weights={"title": 3})
    assert scored(db.posts, "tea") == [(1, 3 * 0.75 + 0.75)]
    assert scored(db.posts, "green hills tea") == [(1, 3 * 0.75 * 2 + 0.75 * 2)]
    # In an aggregation too, sorted by score.
    top = list(articles.aggregate([
        {"$match": {"$text": {"$search": "coffee cake"}}},
        {"$sort": {"score": {"$meta": "textScore"}, "_id": 1}},
        {"$project": {"_id": 1, "score": {"$meta": "textScore"}}},
    ]))
    assert [(d["_id"], d["score"]) for d in top] == [(1, 1.0), (2, 0.75), (3, 0.75), (7, 0.75)]


def test_language_override_and_stemming_in_other_languages(db):
    quotes = db.quotes
    quotes.insert_many([
        {"_id": 1, "language": "portuguese", "original": "A sorte protege os audazes.",
         "translation": [{"language": "english", "quote": "Fortune favors the bold."},
                         {"language": "spanish", "quote": "La suerte protege a los audaces."}]},
        {"_id": 2, "language": "spanish", "original": "Nada hay más surrealista que la realidad.",
         "translation": [{"language": "english", "quote": "There is nothing more surreal than reality."}]},
        {"_id": 3, "original": "is this a dagger which I see before me.",
         "translation": {"language": "german", "quote": "Ist dies ein Dolch, den ich vor mir sehe."}},
    ])
    quotes.create_index([("original", TEXT), ("translation.quote", TEXT)])
    # Each string is stemmed in the language of the nearest document that names one.
    assert ids(quotes.find({"$text": {"$search": "realidad", "$language": "es"}})) == [2]
    assert ids(quotes.find({"$text": {"$search": "favoring"}})) == [1]
    assert ids(quotes.find({"$text": {"$search": "protegem", "$language": "pt"}})) == [1]
    assert ids(quotes.find({"$text": {"$search": "dolche", "$language": "de"}})) == [3]
    # An index with its own default language and override field.
    db.notes.insert_many([{"_id": 1, "text": "les chevaux mangent"}, {"_id": 2, "text": "the horses eat", "idioma": "english"}])
    db.notes.create_index([("text", TEXT)], default_language="french", language_override="idioma")
    assert ids(db.notes.find({"$text": {"$search": "cheval"}})) == [1]
    assert ids(db.notes.find({"$text": {"$search": "horse", "$language": "english"}})) == [2]
    listed = db.notes.index_information()["text_text"]
    assert listed["default_language"] == "french" and listed["language_override"] == "idioma"
    # Each language drops its stop words, from documents, searches and scores.
    db.notes.insert_one({"_id": 4, "text": "le chat et la souris"})
    assert ids(db.notes.find({"$text": {"$search": "le et la"}})) == []
    assert scored(db.notes, "chat") == [(4, 0.75)]
    db.notes.delete_one({"_id": 4})
    assert ids(db.notes.find({"$text": {"$search": "the", "$language": "english"}})) == []
    db.notes.insert_one({"_id": 3, "text": "Él y ella están aquí", "idioma": "spanish"})
    assert ids(db.notes.find({"$text": {"$search": "él están", "$language": "es"}})) == []
    assert ids(db.notes.find({"$text": {"$search": "aquí", "$language": "es"}})) == [3]
    assert scored(db.notes, "aquí", **{"$language": "es"}) == [(3, 1.0)]
    db.notes.delete_one({"_id": 3})
    # "none": no stemming, no stop words.
    db.plain.insert_many([{"_id": 1, "s": "the running man"}])
    db.plain.create_index([("s", TEXT)], default_language="none")
    assert ids(db.plain.find({"$text": {"$search": "run"}})) == []
    assert ids(db.plain.find({"$text": {"$search": "the"}})) == [1]
    assert scored(db.plain, "running") == [(1, round(0.5 / 3 + 0.5, 6))]
    # A document naming a language text search does not know is refused, as in MongoDB.
    with pytest.raises(OperationFailure) as error:
        db.notes.insert_one({"text": "hello", "idioma": "klingon"})
    assert error.value.code == 17262
    assert db.notes.count_documents({}) == 2


def test_compound_text_index(db):
    db.shop.insert_many([
        {"_id": 1, "dept": "kitchen", "desc": "steel coffee maker", "price": 30},
        {"_id": 2, "dept": "kitchen", "desc": "coffee grinder", "price": 20},
        {"_id": 3, "dept": "garden", "desc": "coffee plant", "price": 10},
    ])
    db.shop.create_index([("dept", 1), ("desc", TEXT), ("price", 1)])
    listed = db.shop.index_information()["dept_1_desc_text_price_1"]
    assert listed["key"] == [("dept", 1), ("_fts", "text"), ("_ftsx", 1), ("price", 1)]
    assert ids(db.shop.find({"dept": "kitchen", "$text": {"$search": "coffee"}})) == [1, 2]
    assert ids(db.shop.find({"dept": "garden", "$text": {"$search": "coffee"}, "price": {"$lt": 20}})) == [3]
    # MongoDB needs an equality on every field before the text fields.
    with pytest.raises(OperationFailure) as error:
        list(db.shop.find({"$text": {"$search": "coffee"}}))
    assert error.value.code == 291
    with pytest.raises(OperationFailure) as error:
        list(db.shop.find({"dept": {"$in": ["kitchen"]}, "$text": {"$search": "coffee"}}))
    assert error.value.code == 291
    db.command("dropIndexes", "shop", index={"dept": 1, "_fts": "text", "_ftsx": 1, "price": 1})
    assert list(db.shop.index_information()) == ["_id_"]


def test_words_split_as_mongodb_splits_them(db):
    db.code.insert_many([
        {"_id": 1, "s": "snake_case names"},
        {"_id": 2, "s": "snake case"},
        {"_id": 3, "s": "I don't know"},
        {"_id": 4, "s": "well-known fact"},
    ])
    db.code.create_index([("s", TEXT)])
    # `_` and (in English) `'` belong to words; dashes and other punctuation split them.
    assert ids(db.code.find({"$text": {"$search": "snake_case"}})) == [1]
    assert ids(db.code.find({"$text": {"$search": "snake"}})) == [2]
    assert ids(db.code.find({"$text": {"$search": "don't"}})) == [3]
    assert ids(db.code.find({"$text": {"$search": "known"}})) == [4]
    assert ids(db.code.find({"$text": {"$search": "well-known"}})) == [4]
    # An unclosed quote makes no phrase; a `-` after a closing quote negates nothing.
    assert ids(db.code.find({"$text": {"$search": 'snake "case names'}})) == [1, 2]
    assert ids(db.code.find({"$text": {"$search": '"snake"-"case"'}})) == [2]
    # A language field that is not a string is refused with MongoDB's code.
    with pytest.raises(OperationFailure) as error:
        db.code.insert_one({"s": "x", "language": 5})
    assert error.value.code == 17261


def test_a_relevance_needs_a_text_search(db):
    db.plain.insert_one({"a": "coffee"})
    with pytest.raises(OperationFailure) as error:
        list(db.plain.find({}, {"s": {"$meta": "textScore"}}))
    assert error.value.code == 2
    with pytest.raises(OperationFailure) as error:
        list(db.plain.find({}).sort([("s", {"$meta": "textScore"})]))
    assert error.value.code == 2
    with pytest.raises(OperationFailure) as error:
        list(db.plain.aggregate([{"$project": {"s": {"$meta": "textScore"}}}]))
    assert error.value.code == 40218
    with pytest.raises(OperationFailure) as error:
        db.plain.find_one_and_update({}, {"$set": {"b": 1}}, sort=[("s", {"$meta": "textScore"})])
    assert error.value.code == 2
    # A $meta inside $literal is data, not a request for a score.
    assert list(db.plain.aggregate([{"$project": {"_id": 0, "m": {"$literal": {"$meta": "x"}}}}])) == [{"m": {"$meta": "x"}}]
