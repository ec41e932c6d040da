fn main() {
    let mut dp = match lb_ctl::dataplane::Dataplane::open(&Default::default()) {
        Ok(d) => d,
        Err(e) => {
            let mut s: &dyn std::error::Error = &e;
            eprintln!("{s}");
            while let Some(n) = s.source() {
                eprintln!("  caused by: {n}");
                s = n;
            }
            std::process::exit(1);
        }
    };
    println!("loaded; adopted={}", dp.adopted());
    dp.set_ring(0, &vec![1u32; 65537]).unwrap();
    println!("{:?}", dp.ring(0).unwrap().map(|r| r.len()));
}
