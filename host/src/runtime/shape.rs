//! What an uploaded component is made of, read with `wasmparser` before anything is compiled.
//!
//! Compiling costs 100+ ms per component (seconds for a large one) and every core of the
//! machine; parsing the section headers costs a few milliseconds. So an upload that is not a
//! component, does not export `handle`, imports what its tenant is not granted, or would
//! instantiate more memories, tables or core instances than the configured bounds is refused
//! from the parse, before any compile.
//!
//! The counts are what instantiating the component once creates, the way wasmtime's pooling
//! allocator counts them: memories and tables *defined* by each instantiated core module
//! (imported ones are shared, not new), nested components counted once per instantiation. A
//! module or component the parse cannot resolve to its definition (imported, or re-exported
//! by an instance) is counted as the largest one in the binary, an upper bound.

use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind, ComponentTypeRef, Encoding,
    Instance, Parser, Payload,
};

/// Resources one instantiation takes from the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub memories: u64,
    pub tables: u64,
    pub core_instances: u64,
    /// Instantiations of a module whose definition is not known here (see the module docs).
    unresolved: u64,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.memories = self.memories.saturating_add(other.memories);
        self.tables = self.tables.saturating_add(other.tables);
        self.core_instances = self.core_instances.saturating_add(other.core_instances);
        self.unresolved = self.unresolved.saturating_add(other.unresolved);
    }
}

/// The outline of a component: top-level imports and exports, and its instantiation cost.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub cost: Cost,
}

/// One module or component being read; nested ones are pushed while their sections pass.
enum Frame {
    /// Defined memories and tables of a core module.
    Module { memories: u64, tables: u64 },
    Component {
        /// The core module index space: each entry's cost when instantiated (None: unknown).
        modules: Vec<Option<Cost>>,
        /// The component index space, likewise.
        components: Vec<Option<Cost>>,
        cost: Cost,
    },
}

/// Reads the outline of `wasm`. Errors are parse errors, or "not a component".
pub fn inspect(wasm: &[u8]) -> Result<Shape, String> {
    let mut shape = Shape::default();
    let mut stack: Vec<Frame> = Vec::new();
    // The largest module anywhere in the binary: the bound for unresolved instantiations.
    let (mut max_memories, mut max_tables) = (0u64, 0u64);
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        let depth = stack.len();
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err("this is a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)".into());
                }
                stack.push(match encoding {
                    Encoding::Module => Frame::Module { memories: 0, tables: 0 },
                    Encoding::Component => {
                        Frame::Component { modules: Vec::new(), components: Vec::new(), cost: Cost::default() }
                    }
                });
            }
            Payload::MemorySection(r) => {
                if let Some(Frame::Module { memories, .. }) = stack.last_mut() {
                    *memories += u64::from(r.count());
                }
            }
            Payload::TableSection(r) => {
                if let Some(Frame::Module { tables, .. }) = stack.last_mut() {
                    *tables += u64::from(r.count());
                }
            }
            Payload::InstanceSection(r) => {
                let Some(Frame::Component { modules, cost, .. }) = stack.last_mut() else { continue };
                for instance in r {
                    if let Instance::Instantiate { module_index, .. } = instance.map_err(|e| e.to_string())? {
                        let module = modules.get(module_index as usize).copied().flatten();
                        cost.add(module.unwrap_or(Cost { core_instances: 1, unresolved: 1, ..Cost::default() }));
                    }
                }
            }
            Payload::ComponentInstanceSection(r) => {
                let Some(Frame::Component { components, cost, .. }) = stack.last_mut() else { continue };
                for instance in r {
                    if let ComponentInstance::Instantiate { component_index, .. } =
                        instance.map_err(|e| e.to_string())?
                    {
                        match components.get(component_index as usize).copied().flatten() {
                            Some(c) => cost.add(c),
                            // A component that is not defined here can only come from an
                            // import, which the router never satisfies: linking fails later.
                            None => cost.add(Cost { unresolved: 1, core_instances: 1, ..Cost::default() }),
                        }
                    }
                }
            }
            Payload::ComponentAliasSection(r) => {
                for alias in r {
                    let alias = alias.map_err(|e| e.to_string())?;
                    let (module, component) = match alias {
                        ComponentAlias::Outer { kind: ComponentOuterAliasKind::CoreModule, count, index } => {
                            (Some(outer(&stack, count, |m, _| m.get(index as usize).copied().flatten())), None)
                        }
                        ComponentAlias::Outer { kind: ComponentOuterAliasKind::Component, count, index } => {
                            (None, Some(outer(&stack, count, |_, c| c.get(index as usize).copied().flatten())))
                        }
                        ComponentAlias::InstanceExport { kind: ComponentExternalKind::Module, .. } => {
                            (Some(None), None)
                        }
                        ComponentAlias::InstanceExport { kind: ComponentExternalKind::Component, .. } => {
                            (None, Some(None))
                        }
                        _ => (None, None),
                    };
                    if let Some(Frame::Component { modules, components, .. }) = stack.last_mut() {
                        modules.extend(module);
                        components.extend(component);
                    }
                }
            }
            Payload::ComponentImportSection(r) => {
                for import in r {
                    let import = import.map_err(|e| e.to_string())?;
                    if let Some(Frame::Component { modules, components, .. }) = stack.last_mut() {
                        match import.ty {
                            ComponentTypeRef::Module(_) => modules.push(None),
                            ComponentTypeRef::Component(_) => components.push(None),
                            _ => {}
                        }
                    }
                    // Type imports (the world's `use types.{...}`) reach nothing; the rest are
                    // what the host must provide.
                    if depth == 1 && !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        shape.imports.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::ComponentExportSection(r) => {
                for export in r {
                    let export = export.map_err(|e| e.to_string())?;
                    // An export adds a new index for what it exports.
                    if let Some(Frame::Component { modules, components, .. }) = stack.last_mut() {
                        let at = export.index as usize;
                        match export.kind {
                            ComponentExternalKind::Module => modules.push(modules.get(at).copied().flatten()),
                            ComponentExternalKind::Component => components.push(components.get(at).copied().flatten()),
                            _ => {}
                        }
                    }
                    if depth == 1 {
                        shape.exports.push(export.name.name.to_owned());
                    }
                }
            }
            Payload::End(_) => match stack.pop() {
                Some(Frame::Module { memories, tables }) => {
                    max_memories = max_memories.max(memories);
                    max_tables = max_tables.max(tables);
                    if let Some(Frame::Component { modules, .. }) = stack.last_mut() {
                        modules.push(Some(Cost { memories, tables, core_instances: 1, unresolved: 0 }));
                    }
                }
                Some(Frame::Component { cost, .. }) => match stack.last_mut() {
                    Some(Frame::Component { components, .. }) => components.push(Some(cost)),
                    _ => shape.cost = cost,
                },
                None => return Err("unbalanced sections".into()),
            },
            _ => {}
        }
    }
    let cost = &mut shape.cost;
    cost.memories = cost.memories.saturating_add(cost.unresolved.saturating_mul(max_memories));
    cost.tables = cost.tables.saturating_add(cost.unresolved.saturating_mul(max_tables));
    Ok(shape)
}

/// The entry an outer alias points to, `count` components out from the current one.
fn outer(stack: &[Frame], count: u32, pick: impl Fn(&[Option<Cost>], &[Option<Cost>]) -> Option<Cost>) -> Option<Cost> {
    let at = stack.len().checked_sub(1 + count as usize)?;
    match &stack[at] {
        Frame::Component { modules, components, .. } => pick(modules, components),
        Frame::Module { .. } => None,
    }
}

/// The configured bounds a component must fit, named as in the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_memories_per_component: u32,
    pub max_tables_per_component: u32,
    pub max_core_instances_per_component: u32,
    pub max_component_memory_bytes: usize,
    /// The tenant's cap on each memory.
    pub max_memory_bytes: usize,
}

impl Bounds {
    /// The first bound `cost` exceeds, as a message that names it.
    pub fn check(&self, cost: &Cost) -> Result<(), String> {
        let over = |what: &str, n: u64, key: &str, limit: u32| {
            format!("the component would create {n} {what}; the limit (plugins.{key}) is {limit}")
        };
        if cost.memories > u64::from(self.max_memories_per_component) {
            return Err(over(
                "linear memories",
                cost.memories,
                "max_memories_per_component",
                self.max_memories_per_component,
            ));
        }
        if cost.tables > u64::from(self.max_tables_per_component) {
            return Err(over("tables", cost.tables, "max_tables_per_component", self.max_tables_per_component));
        }
        if cost.core_instances > u64::from(self.max_core_instances_per_component) {
            let (n, limit) = (cost.core_instances, self.max_core_instances_per_component);
            return Err(over("core instances", n, "max_core_instances_per_component", limit));
        }
        let reserve = cost.memories.saturating_mul(self.max_memory_bytes as u64);
        if reserve > self.max_component_memory_bytes as u64 {
            return Err(format!(
                "the component's {} linear memories may grow to {} bytes each ({reserve} bytes together); the limit (plugins.max_component_memory_bytes) is {}",
                cost.memories, self.max_memory_bytes, self.max_component_memory_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module of `memories` memories and `tables` tables, hand-encoded.
    fn module(memories: u8, tables: u8) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        if tables > 0 {
            let body: Vec<u8> = std::iter::once(tables).chain((0..tables).flat_map(|_| [0x70, 0x00, 0x00])).collect();
            m.extend([0x04, body.len() as u8]);
            m.extend(body);
        }
        if memories > 0 {
            let body: Vec<u8> = std::iter::once(memories).chain((0..memories).flat_map(|_| [0x00, 0x01])).collect();
            m.extend([0x05, body.len() as u8]);
            m.extend(body);
        }
        m
    }

    /// A component defining `module` and instantiating it `times` times.
    fn component(module: &[u8], times: u8) -> Vec<u8> {
        let mut c = b"\0asm\x0d\0\x01\0".to_vec();
        c.extend([0x01, module.len() as u8]);
        c.extend(module);
        let body: Vec<u8> = std::iter::once(times).chain((0..times).flat_map(|_| [0x00, 0x00, 0x00])).collect();
        c.extend([0x02, body.len() as u8]);
        c.extend(body);
        c
    }

    #[test]
    fn instances_of_one_module_are_counted_one_by_one() {
        let shape = inspect(&component(&module(1, 1), 5)).unwrap();
        assert_eq!((shape.cost.memories, shape.cost.tables, shape.cost.core_instances), (5, 5, 5));
    }

    #[test]
    fn a_core_module_is_not_a_component() {
        assert!(inspect(&module(1, 0)).unwrap_err().contains("not a component"));
        assert!(inspect(b"junk").is_err());
    }

    #[test]
    fn each_bound_is_named() {
        let bounds = Bounds {
            max_memories_per_component: 2,
            max_tables_per_component: 3,
            max_core_instances_per_component: 4,
            max_component_memory_bytes: 100,
            max_memory_bytes: 60,
        };
        let cost = |memories, tables, core_instances| Cost { memories, tables, core_instances, unresolved: 0 };
        assert!(bounds.check(&cost(1, 3, 4)).is_ok());
        assert!(bounds.check(&cost(3, 0, 3)).unwrap_err().contains("(plugins.max_memories_per_component) is 2"));
        assert!(bounds.check(&cost(0, 4, 1)).unwrap_err().contains("plugins.max_tables_per_component"));
        assert!(bounds.check(&cost(0, 0, 5)).unwrap_err().contains("plugins.max_core_instances_per_component"));
        assert!(bounds.check(&cost(2, 0, 2)).unwrap_err().contains("(plugins.max_component_memory_bytes) is 100"));
    }
}
