use super::analyze;
use super::catalogue;

#[test]
fn fuzz_tmp() {
    let mut seeds: Vec<String> = vec![super::tests::SINE.into(), super::tests::DIGITS.into(), super::tests::RESUNET.into()];
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")).unwrap() {
        seeds.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    let names: Vec<&str> = catalogue::builtins().iter().map(|b| b.name).collect();
    let extra = ["0", "-1", "1", "2", "3", "2147483648", "16777216", "1e308", "-0.5", "1.5", "x", "h", "B", "[B, -1]", "[0, 1]", "[]", "[3, 3]", "same", "valid", "none", "true", "params", "weights", "loss", "e1", "c", "-2", "4", "[2, 3, 1, 0]", "[1]", "axis: 0", "axis: -1", "axis: 5", "keepdims: true", "stride: 3", "pad: 2", "dilation: 3", "mode: bilinear"];
    let mut state = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let iters: usize = std::env::var("ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let mut oks = 0;
    for it in 0..iters {
        let src = &seeds[next(seeds.len())];
        // tokenize on identifier/number boundaries
        let mut toks: Vec<String> = vec![];
        let mut cur = String::new();
        for ch in src.chars() {
            if ch.is_alphanumeric() || ch == '_' || ch == '.' {
                cur.push(ch);
            } else {
                if !cur.is_empty() { toks.push(std::mem::take(&mut cur)); }
                toks.push(ch.to_string());
            }
        }
        if !cur.is_empty() { toks.push(cur); }
        for _ in 0..1 + next(3) {
            let i = next(toks.len());
            let t = &toks[i];
            let word = t.chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_');
            if !word { continue; }
            toks[i] = match next(3) {
                0 => names[next(names.len())].to_string(),
                1 => extra[next(extra.len())].to_string(),
                _ => format!("{} |> {}", t, names[next(names.len())]),
            };
        }
        let s: String = toks.concat();
        let (file, _) = crate::syntax::parse(&s);
        let r = std::panic::catch_unwind(|| analyze(&file, &s));
        match r {
            Err(_) => panic!("PANIC at iter {it} on:\n{s}"),
            Ok(Err(d)) => {
                for x in &d {
                    if x.message.contains("internal") { panic!("ICE on:\n{s}\n{}", crate::diag::render_plain("f", &s, &d)); }
                }
            }
            Ok(Ok(_)) => oks += 1,
        }
    }
    eprintln!("ok programs: {oks}/{iters}");
}
