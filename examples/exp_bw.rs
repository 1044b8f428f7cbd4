use lstmrt::Model;
use std::time::Instant;
fn time(model: &Model, steps: usize) -> f64 {
    let arch = model.architecture();
    let xs = vec![0.1f32; steps * arch.input_size as usize];
    let mut st = model.new_state();
    let mut best = f64::MAX;
    for _ in 0..30 {
        let t = Instant::now();
        model.run(&mut st, &xs).unwrap();
        best = best.min(t.elapsed().as_secs_f64() / steps as f64);
    }
    best * 1e9
}
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let steps: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let m = Model::open(&path).unwrap();
    println!("mmap      {:.0} ns/step", time(&m, steps));
    let bytes = std::fs::read(&path).unwrap();
    let m = Model::from_bytes(&bytes).unwrap();
    println!("from_bytes {:.0} ns/step", time(&m, steps));
}
