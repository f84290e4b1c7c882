//! What restoring a cache-mount store costs against letting its step refill it, as earlier runs
//! measured it: kept in the stores image's label, so that `auto` restores a store only where
//! that pays (a small store from a fast registry is refilled quicker than it is pulled, unpacked
//! and copied). Pure: a label in, a decision and a new label out.

use std::collections::BTreeMap;

/// The config label of a stores image that carries these measurements.
pub const COSTS_LABEL: &str = "dev.sdi.cache-mounts.costs";

/// One store's measurements, in milliseconds (`None`: not measured yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCost {
    /// Its steps, on an empty store (they fetch everything).
    pub cold: Option<u64>,
    /// Its steps, on the restored store.
    pub warm: Option<u64>,
    /// Its restore (its share of the pull, unpack and copy).
    pub restore: Option<u64>,
}

/// By store directory (`mount_dir`).
pub type Costs = BTreeMap<String, StoreCost>;

/// `m-…:cold=12300,warm=4100,restore=6000 m-…:cold=900`; what does not parse is left out.
pub fn parse(label: &str) -> Costs {
    let mut costs = Costs::new();
    for entry in label.split_whitespace() {
        let Some((dir, fields)) = entry.split_once(':') else { continue };
        let mut cost = StoreCost::default();
        for (key, value) in fields.split(',').filter_map(|f| f.split_once('=')) {
            let Ok(ms) = value.parse::<u64>() else { continue };
            match key {
                "cold" => cost.cold = Some(ms),
                "warm" => cost.warm = Some(ms),
                "restore" => cost.restore = Some(ms),
                _ => {}
            }
        }
        costs.insert(dir.to_string(), cost);
    }
    costs
}

pub fn format(costs: &Costs) -> String {
    let entry = |(dir, c): (&String, &StoreCost)| {
        let fields: Vec<String> = [("cold", c.cold), ("warm", c.warm), ("restore", c.restore)]
            .into_iter()
            .filter_map(|(k, v)| Some(format!("{k}={}", v?)))
            .collect();
        (!fields.is_empty()).then(|| format!("{dir}:{}", fields.join(",")))
    };
    costs.iter().filter_map(entry).collect::<Vec<_>>().join(" ")
}

/// Whether a store is worth restoring: yes unless all three are known and restoring it, then
/// running its steps, took no less than running them on an empty store.
pub fn worth_restoring(cost: &StoreCost) -> bool {
    match (cost.cold, cost.warm, cost.restore) {
        (Some(cold), Some(warm), Some(restore)) => restore + warm < cold,
        _ => true,
    }
}

/// The stores (`(id, dir)`) that are not worth restoring, with what was measured of them.
pub fn not_worth<'a>(stores: impl Iterator<Item = (&'a str, String)>, costs: &Costs) -> Vec<(String, StoreCost)> {
    stores
        .filter_map(|(id, dir)| Some((id.to_string(), *costs.get(&dir)?)))
        .filter(|(_, cost)| !worth_restoring(cost))
        .collect()
}

/// How a store started this run's steps, for what they measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Empty: nothing saved, or not restored (not worth it).
    Empty,
    /// Restored from the saved image, in this many milliseconds.
    Restored(u64),
    /// Left as the builder had it, or anything else: says nothing of either cost.
    Other,
}

/// The cost after a run whose steps that mount the store took `steps` ms.
pub fn measured(old: StoreCost, start: Start, steps: u64) -> StoreCost {
    match start {
        Start::Empty => StoreCost { cold: Some(steps), ..old },
        Start::Restored(restore) => StoreCost { warm: Some(steps), restore: Some(restore), ..old },
        Start::Other => old,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_reads_back_what_was_written_and_skips_what_does_not_parse() {
        let costs = Costs::from([
            ("m-61".to_string(), StoreCost { cold: Some(12300), warm: Some(4100), restore: Some(6000) }),
            ("m-62".to_string(), StoreCost { cold: Some(900), ..Default::default() }),
            ("m-63".to_string(), StoreCost::default()),
        ]);
        let label = format(&costs);
        assert_eq!(label, "m-61:cold=12300,warm=4100,restore=6000 m-62:cold=900");
        let back = parse(&label);
        assert_eq!(back.len(), 2);
        assert_eq!(back["m-61"], costs["m-61"]);
        assert_eq!(parse("m-61:cold=x,warm=5,odd=3 junk")["m-61"], StoreCost { warm: Some(5), ..Default::default() });
    }

    #[test]
    fn a_store_is_restored_unless_refilling_it_was_no_slower() {
        let cost = |cold, warm, restore| StoreCost { cold, warm, restore };
        let table = [
            (cost(Some(30_000), Some(4_000), Some(10_000)), true, "a package store: restoring pays"),
            (cost(Some(2_000), Some(500), Some(3_000)), false, "small and near: refilling is quicker"),
            (cost(Some(3_000), Some(1_000), Some(2_000)), false, "a tie is not worth a restore"),
            (cost(Some(2_000), None, None), true, "never restored yet: learn what it costs"),
            (cost(None, Some(500), Some(3_000)), true, "never refilled: unknown"),
        ];
        for (c, worth, why) in table {
            assert_eq!(worth_restoring(&c), worth, "{why}: {c:?}");
        }
    }

    #[test]
    fn only_the_stores_measured_not_worth_it_are_left_to_their_steps() {
        let cheap = StoreCost { cold: Some(900), warm: Some(800), restore: Some(700) };
        let dear = StoreCost { cold: Some(30_000), warm: Some(4_000), restore: Some(9_000) };
        let costs = Costs::from([("m-61".to_string(), cheap), ("m-62".to_string(), dear)]);
        let stores = [("a", "m-61".to_string()), ("b", "m-62".to_string()), ("c", "m-63".to_string())];
        assert_eq!(not_worth(stores.into_iter(), &costs), [("a".to_string(), cheap)]);
    }

    #[test]
    fn a_run_measures_what_its_start_says() {
        let old = StoreCost { cold: Some(30_000), warm: Some(4_000), restore: Some(10_000) };
        assert_eq!(measured(old, Start::Empty, 28_000), StoreCost { cold: Some(28_000), ..old });
        let restored = measured(old, Start::Restored(8_000), 3_500);
        assert_eq!(restored, StoreCost { cold: Some(30_000), warm: Some(3_500), restore: Some(8_000) });
        assert_eq!(measured(old, Start::Other, 1), old);
    }
}
