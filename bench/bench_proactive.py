"""End-to-end scheduled playbook run: 1,000,000 customers, 20,000,000 events, on a real node.

Goal (issue: proactive service): features → scores → gates → outbox for 1M customers and 20M events in
<= 60 s on 2 cores. The run is the node's own `run_playbook` (the call the scheduler makes): it reads
the events of the playbook's window from the SQLite store (Arrow, in a child process), builds the
features, scores them with the published LightGBM model, selects the top 2 %, runs every gate (consent,
caps, quiet hours, the policy engine's content and region contact rules), writes triggers and outbox
rows in one transaction and appends one ledger entry per trigger.

Setting up is not timed: synthetic customers and events (planted churners and tire-pressure searches)
are bulk-loaded into the store with ADBC before the node opens, and the churn model is trained on a
separate, smaller synthetic population and published into the node's registry.

The peer, on the same events: the features computed the plain pandas way (one boolean filter and
groupby per feature), the way a notebook would; the ratio is ours / peer for the feature step alone.

    python bench/bench_proactive.py [--quick] [--data-dir DIR]
        --quick: 100,000 customers, 2,000,000 events
        --data-dir: keep the loaded node in DIR and reuse it next time (loading 20M events into
                    SQLite takes about 12 minutes here; the runs themselves are what is measured)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.node import Node  # noqa: E402
from appliance.settings import load_settings  # noqa: E402
from predictors.features import build_features, training_frame  # noqa: E402
from predictors.synthetic import generate  # noqa: E402
from predictors.training import train  # noqa: E402

AS_OF = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)  # 14:30 in China, night in the Americas


def _sqlite_times(series: pd.Series) -> pa.Array:
    arr = pa.array(series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]"))
    return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")  # %S carries the microseconds


def bulk_load(db: Path, customers: pd.DataFrame, events: pd.DataFrame) -> None:
    """Write the synthetic population straight into the store's tables (the node is closed meanwhile)."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    ids = customers.index.to_numpy(dtype=np.int64)
    conn = adbc_sqlite.connect(str(db))
    cur = conn.cursor()
    cur.adbc_ingest(
        "customers",
        pa.table(
            {
                "id": ids,
                "external_id": pa.array([f"B-{i}" for i in ids]),
                "region": pa.array(customers["region"].astype(str).to_numpy()),
                "created": _sqlite_times(customers["created"]),
            }
        ),
        mode="append",
    )
    for field in ("segment", "plan", "preferred_language", "time_zone"):
        col = customers[field]
        keep = col.notna().to_numpy()
        cur.adbc_ingest(
            "customer_fields",
            pa.table(
                {
                    "customer_id": ids[keep],
                    "field": pa.array([field] * int(keep.sum())),
                    "value": pa.array(col[keep].astype(str).to_numpy()),
                }
            ),
            mode="append",
        )
    n = len(events)
    for lo in range(0, n, 2_000_000):
        chunk = events.iloc[lo : lo + 2_000_000]
        cur.adbc_ingest(
            "events",
            pa.table(
                {
                    "customer_id": chunk["customer_id"].to_numpy(dtype=np.int64),
                    "ts": _sqlite_times(chunk["ts"]),
                    "kind": pa.array(chunk["kind"].astype(str).to_numpy()),
                    "channel": pa.array(
                        chunk["channel"].astype(object).where(chunk["channel"].notna(), None)
                    ),
                    "amount": pa.array(chunk["amount"].to_numpy(), from_pandas=True),
                    "details": pa.array(["{}"] * len(chunk)),
                    "text": pa.array(chunk["text"].astype(object).where(chunk["text"].notna(), None)),
                }
            ),
            mode="append",
        )
    # Four in five customers opted in to phone and SMS contact.
    opted = ids[ids % 5 != 0]
    for channel in ("phone", "sms"):
        cur.adbc_ingest(
            "consents",
            pa.table(
                {
                    "customer_id": opted,
                    "channel": pa.array([channel] * len(opted)),
                    "status": pa.array(["opt_in"] * len(opted)),
                    "ts": pa.array(["2025-01-01 00:00:00.000000"] * len(opted)),
                    "source": pa.array(["bench"] * len(opted)),
                }
            ),
            mode="append",
        )
    conn.commit()
    cur.close()
    conn.close()


def naive_features(events: pd.DataFrame, customers: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """The churn playbook's event counts the plain pandas way: filter, groupby, reindex, per feature."""
    out = pd.DataFrame(index=customers.index)
    ts = events["ts"]
    for days in (7, 30, 90):
        recent = events[(ts >= as_of - timedelta(days=days)) & (ts < as_of)]
        for kind in ("login", "complaint", "support_contact", "payment_failed", "purchase"):
            sel = recent[recent["kind"] == kind]
            out[f"{kind}_{days}d"] = sel.groupby("customer_id").size().reindex(out.index, fill_value=0)
        spend = recent[recent["kind"] == "purchase"].groupby("customer_id")["amount"].sum()
        out[f"spend_{days}d"] = spend.reindex(out.index, fill_value=0.0)
    last = events[events["kind"] == "login"].groupby("customer_id")["ts"].max()
    out["days_since_login"] = ((as_of - last).dt.total_seconds() / 86400).reindex(out.index)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data-dir", type=Path, help="keep (and reuse) the loaded node here")
    args = ap.parse_args()
    n_customers, n_events = (100_000, 2_000_000) if args.quick else (1_000_000, 20_000_000)

    with tempfile.TemporaryDirectory() as tmp:
        base = args.data_dir or Path(tmp)
        settings = load_settings(
            node={"data_dir": base / "node"},
            proactive={"webhook_url": "http://127.0.0.1:9/hooks"},  # bodies are built; nothing is sent
        )
        if not (base / "node" / "node.json").exists():
            t0 = time.perf_counter()
            customers, events = generate(n_customers, n_events, 11, AS_OF)
            print(
                f"generated {len(customers):,} customers, {len(events):,} events in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            Node.init(settings)
            t0 = time.perf_counter()
            bulk_load(Node.paths(settings.data_dir)["store_db"], customers, events)
            print(f"bulk-loaded the store in {time.perf_counter() - t0:.1f} s (not part of the run)")
            del customers, events
        else:
            print(f"reusing the node loaded in {base / 'node'}")

        node = Node.open(settings)
        try:
            service = node.proactive
            churn = service.playbook("churn_retention")
            # The model: trained on a separate synthetic population (10 % of the size), then published.
            t0 = time.perf_counter()
            tc, te = generate(max(n_customers // 10, 20_000), max(n_events // 10, 400_000), 12, AS_OF)
            horizon = timedelta(days=churn.target.horizon_days if churn.target else 30)
            cutoffs = [AS_OF - horizon - timedelta(days=7 * i) for i in range(4)]
            frame = training_frame(te, tc, churn, cutoffs, data_end=AS_OF).reset_index(drop=True)
            trained = train(
                frame,
                "label",
                validation="time",
                time_column="cutoff",
                folds=3,
                params={"learning_rate": 0.1},
                max_rounds=300,  # as `train_playbook` does
            )
            out = Path(tmp) / "model"
            trained.save(out)
            version, _ = service.publish_model("churn_retention", out, actor="bench")
            print(
                f"trained churn model {version.version} on {len(frame):,} rows in "
                f"{time.perf_counter() - t0:.1f} s: oof AUC {trained.metrics['auc']:.3f}"
            )

            results = []
            for i in range(3):
                t0 = time.perf_counter()
                summary = service.run_playbook("churn_retention", now=AS_OF + timedelta(days=i))
                wall = time.perf_counter() - t0
                results.append((wall, summary))
                print(f"run {i + 1}: {wall:.1f} s  {summary}")
            wall, summary = sorted(results, key=lambda r: r[0])[len(results) // 2]

            t0 = time.perf_counter()
            tire = service.run_playbook("tire_pressure_service", now=AS_OF)
            tire_wall = time.perf_counter() - t0

            # Peer: the feature step the plain pandas way, on the same events frame the run loaded.
            ev, cu = service.load_frames(churn, AS_OF)
            ours, peer = [], []
            for _ in range(3):
                t0 = time.perf_counter()
                build_features(ev, cu, churn, AS_OF)
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                naive_features(ev, cu, AS_OF)
                peer.append(time.perf_counter() - t0)
        finally:
            node.close()

    ours_m, peer_m = statistics.median(ours), statistics.median(peer)
    print()
    print(f"{'step':<44}{'seconds':>10}")
    for k, v in summary["seconds"].items():
        print(f"  churn_retention {k:<28}{v:>10.2f}")
    print(f"{'churn_retention end to end (median)':<44}{wall:>10.2f}   goal <= 60 s")
    print(f"{'tire_pressure_service end to end':<44}{tire_wall:>10.2f}")
    print(
        f"features: ours {ours_m:.2f} s ({churn.feature_names.__len__()} features), plain pandas "
        f"{peer_m:.2f} s (its 19 count/sum/recency features): {peer_m / ours_m:.1f}x"
    )
    print(
        f"triggers: {summary['selected']:,} selected, {summary['raised']:,} raised, tire {tire['selected']:,}"
    )
    return 0 if wall <= 60 else 1


if __name__ == "__main__":
    sys.exit(main())
