//! Hostile components crafted from a real plugin. A component may repeat its sections, so
//! appending a core module and instances of it to `passthrough` keeps a component that still
//! implements the plugin world, and adds only what the test wants: more memories, tables or
//! core instances than the bounds allow. Hand-encoded, as the binary format is simple here.

use wasmparser::{ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind, ComponentTypeRef, Parser, Payload};

/// `base` plus one core module defining `memories` memories (one page each) and `tables`
/// tables, instantiated `times` times.
pub fn with_instances(base: &[u8], memories: u32, tables: u32, times: u32) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    // Tables: funcref, no maximum, 0 elements. Memories: no maximum, 1 page.
    section(&mut module, 4, &repeat(tables, &[0x70, 0x00, 0x00]));
    section(&mut module, 5, &repeat(memories, &[0x00, 0x01]));
    let mut out = base.to_vec();
    section(&mut out, 1, &module);
    // `(instantiate <the new module>)` with no arguments.
    let mut instantiate = vec![0x00];
    leb(&mut instantiate, core_modules(base));
    instantiate.push(0x00);
    section(&mut out, 2, &repeat(times, &instantiate));
    out
}

/// `base` with a custom section naming `tag`: the same component under another hash, so the
/// router compiles it again instead of using its artifact cache.
pub fn tagged(base: &[u8], tag: &str) -> Vec<u8> {
    let mut body = Vec::new();
    leb(&mut body, tag.len() as u32);
    body.extend(tag.as_bytes());
    let mut out = base.to_vec();
    section(&mut out, 0, &body);
    out
}

/// The size of the top-level core module index space of `component`.
fn core_modules(component: &[u8]) -> u32 {
    let mut depth = 0;
    let mut count = 0;
    for payload in Parser::new(0).parse_all(component) {
        match payload.unwrap() {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ModuleSection { .. } if depth == 1 => count += 1,
            Payload::ComponentAliasSection(r) if depth == 1 => {
                for alias in r {
                    match alias.unwrap() {
                        ComponentAlias::Outer { kind: ComponentOuterAliasKind::CoreModule, .. }
                        | ComponentAlias::InstanceExport { kind: ComponentExternalKind::Module, .. } => count += 1,
                        _ => {}
                    }
                }
            }
            Payload::ComponentImportSection(r) if depth == 1 => {
                count += r.into_iter().filter(|i| matches!(i.as_ref().unwrap().ty, ComponentTypeRef::Module(_))).count()
                    as u32;
            }
            Payload::ComponentExportSection(r) if depth == 1 => {
                count +=
                    r.into_iter().filter(|e| e.as_ref().unwrap().kind == ComponentExternalKind::Module).count() as u32;
            }
            _ => {}
        }
    }
    count
}

fn repeat(n: u32, item: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    leb(&mut out, n);
    for _ in 0..n {
        out.extend(item);
    }
    out
}

fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
    out.push(id);
    leb(out, body.len() as u32);
    out.extend(body);
}

fn leb(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
