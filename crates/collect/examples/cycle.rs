//! Runs full collection cycles (system, network, every process, every connection) on the live
//! host and prints the CPU time one cycle costs: what `bench/collect.sh` measures.
//!
//! ```sh
//! cargo run --release -p vigil-collect --example cycle -- 200
//! ```
//!
//! CPU time is this process's utime + stime from `/proc/self/stat` (every thread, including the
//! `statvfs` probe), divided by the number of cycles; one warm-up cycle runs first. The TCP
//! tables are read once per cycle, for both the connections and the network's TCP states. With
//! `CYCLE_PARTS=1` it also prints the cost of each collector alone.

use vigil_collect::{
    ConnectionCollector, NetworkCollector, ProcRoot, ProcessCollector, SystemCollector,
};

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `after_name` starts at field 3.
    let field = |n: usize| fields.get(n - 3).and_then(|it| it.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// Milliseconds of CPU per call of `f`, over `cycles` calls.
fn cpu_ms(root: &ProcRoot, cycles: u64, mut f: impl FnMut()) -> f64 {
    let start = cpu_ticks();
    for _ in 0..cycles {
        f();
    }
    (cpu_ticks() - start) as f64 * 1000.0 / root.ticks_per_second() as f64 / cycles as f64
}

fn main() {
    let cycles: u64 = std::env::args().nth(1).and_then(|it| it.parse().ok()).unwrap_or(200);
    let root = ProcRoot::live();
    let mut system = SystemCollector::new(root.clone());
    let network = NetworkCollector::new(root.clone());
    let mut processes = ProcessCollector::new(root.clone());
    let mut connections = ConnectionCollector::new(root.clone());
    let mut cycle = || {
        let s = system.collect();
        let c = connections.collect();
        let n = network.collect_with_sockets(&c);
        let p = processes.collect();
        (s.metrics.disks.len(), n.interfaces.len(), p.len(), c.len())
    };
    let (disks, interfaces, procs, sockets) = cycle();
    let ms = cpu_ms(&root, cycles, || {
        std::hint::black_box(cycle());
    });
    println!(
        "{ms:.3} ms CPU per cycle over {cycles} cycles \
         ({procs} processes, {sockets} sockets, {interfaces} interfaces, {disks} filesystems)"
    );

    if std::env::var_os("CYCLE_PARTS").is_some() {
        let mut system = SystemCollector::new(root.clone());
        let mut processes = ProcessCollector::new(root.clone());
        let mut connections = ConnectionCollector::new(root.clone());
        let sockets = ConnectionCollector::new(root.clone());
        let parts: [(&str, &mut dyn FnMut()); 5] = [
            ("system", &mut || drop(std::hint::black_box(system.collect()))),
            ("network (own TCP read)", &mut || drop(std::hint::black_box(network.collect()))),
            ("processes", &mut || drop(std::hint::black_box(processes.collect()))),
            ("connections", &mut || drop(std::hint::black_box(connections.collect()))),
            ("sockets only", &mut || drop(std::hint::black_box(sockets.sockets()))),
        ];
        for (name, f) in parts {
            println!("  {name}: {:.3} ms", cpu_ms(&root, cycles, f));
        }
    }
}
