"""Reading and validating training/scoring tables, and the feature schema that gates scoring.

Bad input must fail with the file, the 1-based CSV line (header = line 1), the column and the value, so
a person can fix the file; good input must come out as the exact matrix the model sees.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from predictors.dataset import frame_digest, read_table, training_set
from predictors.errors import DataError, SchemaMismatch
from predictors.schema import Feature, FeatureSchema


def _csv(tmp_path, text: str, name: str = "train.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- reading -------------------------------------------------------------------------------------------------
def test_non_numeric_value_names_file_line_column_and_value(tmp_path):
    path = _csv(tmp_path, "age,income,y\n30,1.5,1\n41,2.5,0\n35,abc,1\n50,3.0,0\n29,2.0,0\n")
    with pytest.raises(DataError) as err:
        training_set(path, "y")
    message = str(err.value)
    assert f"{path} line 4" in message
    assert "'income'" in message and "'abc'" in message


def test_line_numbers_count_blank_lines(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,1\n\n3,4,0\n\n5,x,1\n6,7,0\n8,9,0\n")
    table = read_table(path)
    assert table.lines.tolist() == [2, 4, 6, 7, 8]
    with pytest.raises(DataError, match=r"line 6\b.*'b'.*'x'"):
        training_set(path, "y")


def test_empty_header_only_duplicate_and_malformed_files(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read_table(_csv(tmp_path, "", "empty.csv"))
    with pytest.raises(DataError, match="no rows"):
        read_table(_csv(tmp_path, "a,b,y\n", "header.csv"))
    with pytest.raises(DataError, match=r"line 1.*'a' more than once"):
        read_table(_csv(tmp_path, "a,a,y\n1,2,1\n", "dup.csv"))
    with pytest.raises(DataError, match="not a well-formed CSV"):
        read_table(_csv(tmp_path, "a,b,y\n1,2,1\n1,2,3,4,5\n", "bad.csv"))
    with pytest.raises(DataError, match="cannot read it"):
        read_table(tmp_path / "nope.csv")


def test_saved_dataframe_index_column_is_dropped(tmp_path):
    path = tmp_path / "with_index.csv"
    pd.DataFrame({"a": [1, 2], "y": [0, 1]}).to_csv(path)  # pandas writes ",a,y" and the index
    assert list(read_table(path).frame.columns) == ["a", "y"]


def test_digest_is_sha256_of_the_file_bytes_and_of_dataframe_content(tmp_path):
    text = "a,y\n1,0\n2,1\n"
    path = _csv(tmp_path, text)
    assert read_table(path).digest == hashlib.sha256(text.encode()).hexdigest()
    frame = pd.DataFrame({"a": [1, 2], "y": [0, 1]})
    assert frame_digest(frame) == frame_digest(frame.copy())
    assert frame_digest(frame) != frame_digest(pd.DataFrame({"a": [1, 3], "y": [0, 1]}))
    assert frame_digest(frame) != frame_digest(frame.rename(columns={"a": "b"}))


# -- targets -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        (["Yes", "No", "no", "YES"], "yes", [1, 0, 0, 1]),  # case does not make a third class
        (["Yes", "No", "No", "Yes"], "yes", [1, 0, 0, 1]),
        (["true", "false", "false", "true"], "true", [1, 0, 0, 1]),
        ([1, 0, 0, 1], "1", [1, 0, 0, 1]),
        ([True, False, False, True], "true", [1, 0, 0, 1]),
        ([1.0, 0.0, 0.0, 1.0], "1", [1, 0, 0, 1]),
    ],
)
def test_binary_targets_map_the_positive_class(values, positive, expected):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "t": values})
    data = training_set(frame, "t")
    assert data.y.tolist() == expected
    assert data.schema.positive_label == positive


def test_caravan_style_purchase_yes_no(tmp_path):
    path = _csv(tmp_path, "A,B,Purchase\n1,2,No\n3,4,Yes\n5,6,No\n")
    data = training_set(path, "Purchase")
    assert data.y.tolist() == [0, 1, 0]
    assert data.schema.names == ("A", "B")


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        (["a", "b", "c", "a"], r"3 distinct values \('a', 'b', 'c'\)"),
        (["churned", "stayed", "stayed", "churned"], "no value that reads as the positive class"),
        ([0, 1, 2, 1], "must be binary .* 0, 1, 2"),
        ([1, 1, 1, 1], "only one class"),
        (["yes", "yes", "yes", "yes"], "1 distinct values"),
    ],
)
def test_targets_that_are_not_binary_are_refused_naming_the_values(values, pattern):
    with pytest.raises(DataError, match=pattern):
        training_set(pd.DataFrame({"x": [1, 2, 3, 4], "t": values}), "t")


def test_empty_target_names_the_lines(tmp_path):
    path = _csv(tmp_path, "x,y\n1,1\n2,\n3,0\n4,\n")
    with pytest.raises(DataError, match=r"target 'y' is empty on line 3, line 5"):
        training_set(path, "y")
    path = _csv(tmp_path, "x,y\n1,\n2,\n", "all_empty.csv")
    with pytest.raises(DataError, match=r"target column 'y' is empty \(no values\)"):
        training_set(path, "y")


def test_unknown_target_id_or_time_column_lists_the_columns():
    frame = pd.DataFrame({"x": [1, 2], "y": [0, 1]})
    with pytest.raises(DataError, match=r"no target column 'z'; its columns are x, y"):
        training_set(frame, "z")
    with pytest.raises(DataError, match="no id column 'cid'"):
        training_set(frame, "y", id_column="cid")


# -- features ------------------------------------------------------------------------------------------------
def test_feature_kinds_id_exclusion_and_missing_values(tmp_path):
    path = _csv(
        tmp_path,
        "cid,age,plan,score,y\nC001,30,gold,,1\nC002,,silver,0.5,0\nC003,41,gold,0.1,0\nC004,33,,0.9,1\n",
    )
    data = training_set(path, "y", id_column="cid")
    assert data.schema.id_column == "cid"
    assert data.schema.features == (
        Feature("age", "numeric"),
        Feature("plan", "categorical", ("gold", "silver")),
        Feature("score", "numeric"),
    )
    # categories become level codes; missing stays NaN for LightGBM's missing branch
    assert np.array_equal(data.x[:, 1], [0, 1, 0, np.nan], equal_nan=True)
    assert np.isnan(data.x[1, 0]) and np.isnan(data.x[0, 2])


def test_free_text_or_identifier_column_is_refused_with_advice():
    frame = pd.DataFrame({"email": [f"user{i}@example.com" for i in range(60)], "y": [0, 1] * 30})
    with pytest.raises(DataError, match=r"60 distinct values.*id column"):
        training_set(frame, "y")
    assert training_set(frame.assign(x=1.0), "y", id_column="email").schema.names == ("x",)


def test_time_column_is_parsed_and_kept_out_of_features():
    frame = pd.DataFrame(
        {"x": [1, 2, 3], "at": ["2026-01-03", "2026-01-01T10:00:00Z", "2026-01-02"], "y": [0, 1, 0]}
    )
    data = training_set(frame, "y", time_column="at")
    assert data.schema.names == ("x",)
    assert np.argsort(data.times).tolist() == [1, 2, 0]
    with pytest.raises(DataError, match=r"time column 'at' .* row 2"):
        training_set(frame.assign(at=["2026-01-03", "soon", "2026-01-02"]), "y", time_column="at")


# -- schema ------------------------------------------------------------------------------------------------
SCHEMA = FeatureSchema(
    (Feature("age"), Feature("plan", "categorical", ("gold", "silver")), Feature("spend")),
    target="y",
    id_column="cid",
)


def test_schema_json_round_trip_and_digest():
    again = FeatureSchema.from_json(SCHEMA.to_json())
    assert again == SCHEMA
    assert again.digest == SCHEMA.digest
    assert FeatureSchema((Feature("age"),), target="y").digest != SCHEMA.digest
    with pytest.raises(DataError, match="not valid"):
        FeatureSchema.from_json('{"format": "appliance-feature-schema/1", "features": [{"name": "a"}]}')
    with pytest.raises(DataError, match="not valid"):
        FeatureSchema.from_json("[1, 2")


def test_schema_check_accepts_side_columns_in_any_order():
    frame = pd.DataFrame({"spend": [1.0], "y": [1], "plan": ["gold"], "cid": ["C1"], "age": [30]})
    SCHEMA.check(frame)
    assert SCHEMA.matrix(frame).tolist() == [[30.0, 0.0, 1.0]]


def test_schema_check_lists_missing_extra_and_mistyped_columns():
    frame = pd.DataFrame({"age": ["30", "old"], "plan": ["gold", "gold"], "colour": ["red", "blue"]})
    with pytest.raises(SchemaMismatch) as err:
        SCHEMA.check(frame, source="new.csv")
    message = str(err.value)
    assert "missing columns: spend" in message
    assert "unexpected columns: colour" in message
    assert "column 'age' must be numeric but new.csv row 2 holds 'old'" in message
    assert "retrain" in message
    SCHEMA.check(frame.drop(columns="colour").assign(age=[30, 31], spend=1.0))  # fixed: passes


def test_unseen_category_level_scores_as_missing_not_an_error():
    frame = pd.DataFrame({"age": [30, 40], "plan": ["platinum", "silver"], "spend": [1.0, 2.0]})
    SCHEMA.check(frame)
    matrix = SCHEMA.matrix(frame)
    assert np.isnan(matrix[0, 1]) and matrix[1, 1] == 1.0


def test_numeric_category_values_match_their_text_levels():
    schema = FeatureSchema((Feature("region", "categorical", ("1", "2", "3")),), target="y")
    assert schema.matrix(pd.DataFrame({"region": [3, 1, 2]})).ravel().tolist() == [2.0, 0.0, 1.0]
    assert schema.matrix(pd.DataFrame({"region": [3.0, 1.0, np.nan]}))[:2].ravel().tolist() == [2.0, 0.0]
