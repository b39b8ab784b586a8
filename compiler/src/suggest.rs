//! "Did you mean ...?" suggestions for misspelt names. Every diagnostic that
//! suggests a name — of a built-in, a variable or a train key in sema, of a
//! CSV column in the runtime — asks [`did_you_mean`] or [`closest`], so all
//! of them rank candidates the same way and stay silent the same way when
//! nothing is close; every list of valid names is written by [`names_list`].

/// `a`, `b`, `c` → "`a`, `b`, `c`".
pub fn names_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The note `help: did you mean `NAME`?` for a misspelt `name`, if one of the
/// candidates is close to it (see [`closest`]).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(name, candidates).map(|s| format!("help: did you mean `{s}`?"))
}

/// The candidate closest to `name`, if any is close enough to be a plausible
/// misspelling of it.
///
/// Names are compared ignoring case by [`distance`] (one edit: insert,
/// delete or replace a character, or swap two adjacent ones). A candidate is
/// close when it is at most [`max_edits`] edits away. Among equally close
/// candidates the one that also matches the case of `name` better wins, then
/// the alphabetically first, so the answer never depends on the order of the
/// candidates.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = max_edits(name);
    let folded = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .filter_map(|c| {
            let d = distance(&folded, &c.to_lowercase());
            (d <= limit).then(|| ((d, distance(name, c), c), c))
        })
        .min_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, c)| c)
}

/// How many edits a suggestion for `name` may be away from it: one per three
/// characters, at least one (1 up to five characters, 2 up to eight, 3 up to
/// eleven, …), and always fewer than the name has characters, so a
/// suggestion never replaces the whole name (a one-character name only gets
/// suggestions that differ from it in case).
pub fn max_edits(name: &str) -> usize {
    let n = name.chars().count();
    (n.max(3) / 3).min(n.saturating_sub(1))
}

/// The optimal string alignment distance between two strings, by characters:
/// the fewest insertions, deletions, replacements and swaps of two adjacent
/// characters that turn `a` into `b`, where no character is edited twice
/// (Damerau–Levenshtein restricted to non-overlapping edits). Case-sensitive.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i - 2, i - 1 and i of the table d[i][j] = distance(a[..i], b[..j]).
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let replace = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut d = replace.min(prev[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        for (a, b, d) in [
            ("", "", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("relu", "relu", 0),
            ("kitten", "sitting", 3),
            ("dens", "dense", 1),
            ("dense", "dens", 1),
            ("relu", "elu", 1),
            ("lstm", "sum", 2),
            // a swap of adjacent characters is one edit
            ("rleu", "relu", 1),
            ("rmes", "rmse", 1),
            ("bacth", "batch", 1),
            ("ab", "ba", 1),
            ("abcd", "badc", 2),
            // no character is edited twice: not `ca` → `ac` → `abc`
            ("ca", "abc", 3),
            // case counts
            ("Relu", "relu", 1),
            // characters, not bytes
            ("é", "e", 1),
            ("héllo", "hlélo", 1),
        ] {
            assert_eq!(distance(a, b), d, "distance({a:?}, {b:?})");
            assert_eq!(distance(b, a), d, "distance({b:?}, {a:?})");
        }
    }

    #[test]
    fn edit_budget_grows_with_the_name() {
        let budgets: Vec<usize> =
            ["", "h", "hh", "sin", "lstm", "dense", "conv2d", "sigmoid", "residual", "leakyrelu"]
                .iter()
                .map(|n| max_edits(n))
                .collect();
        assert_eq!(budgets, [0, 0, 1, 1, 1, 1, 2, 2, 2, 3]);
    }

    #[test]
    fn suggestions() {
        let builtins = ["dense", "relu", "elu", "selu", "gelu", "sum", "convlstm", "conv2d", "tanh"];
        for (name, want) in [
            ("dens", Some("dense")),
            ("rleu", Some("relu")),
            ("Relu", Some("relu")),
            ("RELU", Some("relu")),
            ("Dense", Some("dense")),
            ("conv2", Some("conv2d")),
            ("tahn", Some("tanh")),
            ("lstm", None),
            ("xyz", None),
        ] {
            assert_eq!(closest(name, builtins), want, "closest({name:?})");
        }
        assert_eq!(closest("h", ["x"]), None);
        assert_eq!(closest("H", ["h", "x"]), Some("h"));
        assert_eq!(closest("hh", ["h"]), Some("h"));
        assert_eq!(closest("x", []), None);
    }

    #[test]
    fn ties_prefer_matching_case_then_the_alphabet() {
        // all three equal `reLU` ignoring case; `reLu` differs least in case
        assert_eq!(closest("reLU", ["relu", "RELU", "reLu"]), Some("reLu"));
        assert_eq!(closest("reLU", ["relu", "RELU"]), Some("RELU"));
        // a name never suggests itself
        assert_eq!(closest("relu", ["relu", "gelu"]), Some("gelu"));
        // the order of the candidates does not matter
        assert_eq!(closest("gelo", ["gelu", "elo"]), Some("elo"));
        assert_eq!(closest("gelo", ["elo", "gelu"]), Some("elo"));
    }

    #[test]
    fn note_text() {
        assert_eq!(did_you_mean("rleu", ["relu", "elu"]).as_deref(), Some("help: did you mean `relu`?"));
        assert_eq!(did_you_mean("lstm", ["sum", "convlstm"]), None);
    }
}
