//! QuiverDB's demo page, built with trunk (`scripts/web.sh`).
//!
//! In the browser, `main` builds a flat index of 5000 seeded random 64-dimensional vectors
//! through the `quiverdb-wasm` API, runs one search, and writes the top 5 neighbours, the timings
//! and the kernel instruction set into the element with id `result` (its `data-status`
//! attribute becomes `ok` or `error`). Natively `main` does nothing: the crate only has to
//! compile there so that workspace-wide checks pass.

fn main() {
    #[cfg(target_arch = "wasm32")]
    demo::run();
}

#[cfg(target_arch = "wasm32")]
mod demo {
    use core::fmt::Write;

    use js_sys::{Error, Float32Array, Reflect, Uint32Array};
    use quiverdb_core::rng::Rng;
    use quiverdb_wasm::{kernel_isa, FlatIndex};
    use wasm_bindgen::{JsCast, JsValue};

    /// Vectors in the demo index.
    const COUNT: usize = 5000;
    /// Their dimension.
    const DIM: usize = 64;
    /// Neighbours shown.
    const K: usize = 5;
    /// Seed of the data and the query: the page shows the same result on every load.
    const SEED: u64 = 42;
    /// Extra searches timed together, for a mean finer than `performance.now()`'s resolution.
    const REPEATS: u32 = 100;

    /// Fills `#result` with the demo's output, or with the error that stopped it.
    pub fn run() {
        let Some(out) =
            web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("result"))
        else {
            return;
        };
        let (text, status) = match demo() {
            Ok(text) => (text, "ok"),
            Err(msg) => (format!("error: {msg}"), "error"),
        };
        out.set_text_content(Some(&text));
        // Only fails for an invalid attribute name, which this is not.
        let _ = out.set_attribute("data-status", status);
    }

    /// Milliseconds since page load (0 where the Performance API is missing).
    fn now() -> f64 {
        web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
    }

    /// The message of an error thrown by `quiverdb-wasm`.
    fn message(e: JsValue) -> String {
        match e.dyn_ref::<Error>() {
            Some(err) => err.message().into(),
            None => format!("{e:?}"),
        }
    }

    fn demo() -> Result<String, String> {
        let mut rng = Rng::new(SEED);
        let data: Vec<f32> = (0..COUNT * DIM).map(|_| rng.normal() as f32).collect();
        let query: Vec<f32> = (0..DIM).map(|_| rng.normal() as f32).collect();

        let query = JsValue::from(Float32Array::from(query.as_slice()));
        let k = JsValue::from(K as u32);
        let t0 = now();
        let mut index = FlatIndex::new(JsValue::from(DIM as u32), "l2".into()).map_err(message)?;
        index.add(Float32Array::from(data.as_slice()).into(), None).map_err(message)?;
        let t1 = now();
        let result = index.search(query.clone(), k.clone(), None).map_err(message)?;
        let t2 = now();
        for _ in 0..REPEATS {
            index.search(query.clone(), k.clone(), None).map_err(message)?;
        }
        let t3 = now();
        let field = |name: &str| Reflect::get(&result, &name.into()).map_err(message);
        let ids: Vec<u32> = field("ids")?.unchecked_into::<Uint32Array>().to_vec();
        let distances: Vec<f32> = field("distances")?.unchecked_into::<Float32Array>().to_vec();

        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "kernel: {}", kernel_isa());
        let _ = writeln!(
            s,
            "index: {} vectors x {} dims, metric {}, built in {:.1} ms",
            index.length(),
            index.dim(),
            index.metric(),
            t1 - t0
        );
        let _ = writeln!(
            s,
            "search: top-{K} in {:.2} ms (mean of {REPEATS} more: {:.3} ms)",
            t2 - t1,
            (t3 - t2) / f64::from(REPEATS)
        );
        let _ = writeln!(s, "rank  id     squared L2 distance");
        for (rank, (id, d)) in ids.iter().zip(distances).enumerate() {
            let _ = writeln!(s, "{:<5} {id:<6} {d:.4}", rank + 1);
        }
        Ok(s)
    }
}
