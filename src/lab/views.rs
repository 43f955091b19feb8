//! The views the app can show, in one table ([`VIEWS`]), and what the trainer computes for
//! them ([`ViewRequest`], [`Pictures`]).
//!
//! The pictures are computed where the model is (the trainer's worker or thread) and travel
//! to the UI as plain arrays: the UI only draws.

use serde::{Deserialize, Serialize};

use crate::targets::ViewRect;

/// A view of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViewKind {
    /// Base samples pushed through the flow, coloured by where they started.
    Samples,
    /// The flow layer by layer: particles, warped grid, intermediate density, log-det map.
    Layers,
    /// The learned density beside the target's.
    Density,
    /// A CNF's vector field and trajectories.
    Field,
    /// Every model side by side: small multiples and a table of their figures.
    Compare,
    /// Training loss and held-out NLL against steps or time.
    Loss,
}

/// One row of [`VIEWS`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewInfo {
    /// The view.
    pub kind: ViewKind,
    /// Its URL name (`views=samples,layers`).
    pub name: &'static str,
    /// Its title in the UI.
    pub title: &'static str,
    /// What it shows, in one line (the toggle's tooltip).
    pub description: &'static str,
}

/// Every view, in display order (the order of [`ViewKind::ALL`], checked at compile time).
pub const VIEWS: &[ViewInfo] = &[
    ViewInfo {
        kind: ViewKind::Samples,
        name: "samples",
        title: "Samples",
        description: "Base samples pushed through the flow, coloured by where they started, over the target",
    },
    ViewInfo {
        kind: ViewKind::Layers,
        name: "layers",
        title: "Layer by layer",
        description: "The flow one layer at a time: particles, the warped base grid, the density after each layer and its log-determinant",
    },
    ViewInfo {
        kind: ViewKind::Density,
        name: "density",
        title: "Learned vs target density",
        description: "The flow's density beside the target's, on one colour scale",
    },
    ViewInfo {
        kind: ViewKind::Field,
        name: "field",
        title: "Vector field",
        description: "A continuous flow's velocity f(z, t) and the samples' paths up to time t (CNF only)",
    },
    ViewInfo {
        kind: ViewKind::Compare,
        name: "compare",
        title: "Compare models",
        description: "Every model trained on this target, side by side, with a table of their numbers (shown when there are several models)",
    },
    ViewInfo {
        kind: ViewKind::Loss,
        name: "loss",
        title: "Loss curves",
        description: "Training loss and held-out NLL against steps or training time; rollbacks marked",
    },
];

const _: () = {
    assert!(VIEWS.len() == ViewKind::ALL.len());
    let mut i = 0;
    while i < VIEWS.len() {
        assert!(VIEWS[i].kind as usize == i && ViewKind::ALL[i] as usize == i);
        i += 1;
    }
};

impl ViewKind {
    /// Every view, in display order.
    pub const ALL: [ViewKind; 6] = [
        ViewKind::Samples,
        ViewKind::Layers,
        ViewKind::Density,
        ViewKind::Field,
        ViewKind::Compare,
        ViewKind::Loss,
    ];

    /// Its row of [`VIEWS`].
    pub fn info(self) -> &'static ViewInfo {
        &VIEWS[self as usize]
    }

    /// Its URL name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Parses a URL name.
    pub fn from_name(name: &str) -> Option<Self> {
        VIEWS.iter().find(|v| v.name == name).map(|v| v.kind)
    }
}

/// A set of views (which are shown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ViewSet(u8);

impl Default for ViewSet {
    /// Every view (the vector field shows only for CNFs).
    fn default() -> Self {
        ViewKind::ALL.into_iter().collect()
    }
}

impl FromIterator<ViewKind> for ViewSet {
    fn from_iter<I: IntoIterator<Item = ViewKind>>(iter: I) -> Self {
        let mut set = Self(0);
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}

impl ViewSet {
    /// No view.
    pub const NONE: ViewSet = ViewSet(0);

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: ViewKind) -> bool {
        self.0 & (1 << kind as u8) != 0
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: ViewKind) {
        self.0 |= 1 << kind as u8;
    }

    /// Removes `kind`.
    pub fn remove(&mut self, kind: ViewKind) {
        self.0 &= !(1 << kind as u8);
    }

    /// The views in the set, in display order.
    pub fn iter(self) -> impl Iterator<Item = ViewKind> {
        ViewKind::ALL.into_iter().filter(move |&k| self.contains(k))
    }

    /// `samples,layers,…` (the URL's form).
    pub fn to_names(self) -> String {
        self.iter()
            .map(ViewKind::name)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses `samples,layers,…` (an empty text is the empty set); `Err` names the bad part.
    pub fn from_names(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                ViewKind::from_name(&name.to_ascii_lowercase()).ok_or_else(|| name.to_owned())
            })
            .collect()
    }
}

/// What the UI shows, so the trainer computes only that (sent whenever it changes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewRequest {
    /// The rectangle of the plane the pictures cover.
    pub view: ViewRect,
    /// Particles pushed through every layer (0: no trace).
    pub particles: usize,
    /// Lines of the base-space grid per direction, traced with the particles (0: none).
    pub grid_lines: usize,
    /// Cells per side of the density pictures (0: none).
    pub resolution: usize,
    /// The learned density (at the last layer) is shown.
    pub density: bool,
    /// The layer whose intermediate density and log-det map are shown, if any.
    pub depth: Option<usize>,
    /// A CNF's vector field is shown (at `depth`'s time).
    pub field: bool,
    /// Points the user pinned or points at, to take apart by the change of variables.
    pub probes: Vec<[f32; 2]>,
    /// The language of the pictures' labels (the trainer's thread speaks it).
    pub lang: crate::i18n::Lang,
}

impl Default for ViewRequest {
    /// Nothing but samples.
    fn default() -> Self {
        Self {
            view: ViewRect::square(4.0),
            particles: 0,
            grid_lines: 0,
            resolution: 0,
            density: false,
            depth: None,
            field: false,
            probes: Vec::new(),
            lang: crate::i18n::Lang::En,
        }
    }
}

/// Points per grid line of the warped base grid.
pub const GRID_LINE_POINTS: usize = 48;
/// Arrows per side of the vector field.
pub const FIELD_ARROWS: usize = 21;

/// What the trainer computed for the views, about twice a second. The arrays travel in
/// [`Pictures::arrays`] order as one transferred buffer on the web; the rest is the header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pictures {
    /// Step of the model pictured.
    pub step: u64,
    /// Layers `K` (the trace has `K + 1` depths).
    pub layers: usize,
    /// One label per layer, sample order ("affine coupling 3: x₁ given x₂").
    pub labels: Vec<String>,
    /// A CNF's time at each depth `0…K` (empty for discrete flows).
    pub times: Vec<f32>,
    /// The rectangle the grids cover.
    pub view: ViewRect,
    /// Cells per side of the grids.
    pub resolution: usize,
    /// Particles in the trace (then the grid lines' points).
    pub particles: usize,
    /// Grid lines per direction in the trace, [`GRID_LINE_POINTS`] points each.
    pub grid_lines: usize,
    /// The depth of `depth_density` and `log_det`.
    pub depth: Option<usize>,
    /// The vector field's time.
    pub field_time: Option<f32>,
    /// Vector-field evaluations of one density evaluation (CNF), if known.
    pub solver_evaluations: Option<u64>,
    /// A CNF's trace estimators at the field's time, on a few of the displayed samples: the
    /// mean |exact trace| and the standard deviation of one Hutchinson probe's estimate, for
    /// each probe kind (`[exact, gaussian std, rademacher std]`).
    pub trace_spread: Option<[f32; 3]>,
    /// The probed points, taken apart (see `lab::probe`), in the request's order.
    pub probes: Vec<super::probe::ProbeBreakdown>,
    /// Milliseconds the trainer took for these pictures (drawn on the GPU: from their
    /// submission to their arrival).
    pub cost_ms: f64,
    /// The trace: `K + 1` depths × (particles + grid points) × 2, depth-major.
    #[serde(skip)]
    pub trace: Vec<f32>,
    /// `log q(x)` of the flow on the grid (row-major, top row first).
    #[serde(skip)]
    pub density: Vec<f32>,
    /// `log p_depth(x)` on the grid.
    #[serde(skip)]
    pub depth_density: Vec<f32>,
    /// `log|det ∂f_depth/∂z|` of layer `depth` on the grid (at its output's position).
    #[serde(skip)]
    pub log_det: Vec<f32>,
    /// Velocities at [`FIELD_ARROWS`]² points of the view, `[vx, vy]` row-major top row
    /// first.
    #[serde(skip)]
    pub field: Vec<f32>,
}

impl Pictures {
    /// The bulk arrays, in transfer order.
    pub fn arrays(&self) -> [&Vec<f32>; 5] {
        [
            &self.trace,
            &self.density,
            &self.depth_density,
            &self.log_det,
            &self.field,
        ]
    }

    /// The bulk arrays, mutably, in transfer order.
    pub fn arrays_mut(&mut self) -> [&mut Vec<f32>; 5] {
        [
            &mut self.trace,
            &mut self.density,
            &mut self.depth_density,
            &mut self.log_det,
            &mut self.field,
        ]
    }

    /// Points per depth in the trace.
    pub fn trace_stride(&self) -> usize {
        self.particles + 2 * self.grid_lines * GRID_LINE_POINTS
    }

    /// The traced points (particles, then grid lines) after `depth` layers, `[x, y]` pairs.
    pub fn trace_at(&self, depth: usize) -> &[f32] {
        let stride = 2 * self.trace_stride();
        self.trace
            .get(depth * stride..(depth + 1) * stride)
            .unwrap_or(&[])
    }
}

/// The base-space grid traced beside the particles: `lines` vertical then `lines` horizontal
/// lines over `[−half, half]²`, [`GRID_LINE_POINTS`] points each, `[x, y]` pairs.
pub fn base_grid(lines: usize, half: f32) -> Vec<f32> {
    let mut points = Vec::with_capacity(4 * lines * GRID_LINE_POINTS);
    let at = |k: usize, n: usize| -half + 2.0 * half * k as f32 / (n.max(2) - 1) as f32;
    for vertical in [true, false] {
        for line in 0..lines {
            let fixed = at(line, lines);
            for k in 0..GRID_LINE_POINTS {
                let moving = at(k, GRID_LINE_POINTS);
                let (x, y) = if vertical {
                    (fixed, moving)
                } else {
                    (moving, fixed)
                };
                points.extend([x, y]);
            }
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_sets_round_trip_through_names() {
        let set: ViewSet = [ViewKind::Layers, ViewKind::Loss].into_iter().collect();
        assert_eq!(set.to_names(), "layers,loss");
        assert_eq!(ViewSet::from_names("layers,loss"), Ok(set));
        assert_eq!(ViewSet::from_names(" Loss ,layers,"), Ok(set));
        assert_eq!(ViewSet::from_names(""), Ok(ViewSet::NONE));
        assert_eq!(ViewSet::from_names("layers,pie"), Err("pie".to_owned()));
        assert_eq!(ViewSet::default().iter().count(), VIEWS.len());
    }

    #[test]
    fn the_base_grid_spans_the_square() {
        let grid = base_grid(3, 2.0);
        assert_eq!(grid.len(), 2 * 2 * 3 * GRID_LINE_POINTS);
        assert_eq!(&grid[..2], &[-2.0, -2.0]);
        let last_of_first_line = &grid[2 * (GRID_LINE_POINTS - 1)..2 * GRID_LINE_POINTS];
        assert_eq!(last_of_first_line, &[-2.0, 2.0]);
    }

    #[test]
    fn trace_at_slices_one_depth_and_is_empty_past_the_end() {
        let pictures = Pictures {
            particles: 2,
            trace: (0..8).map(|v| v as f32).collect(),
            ..Pictures::default()
        };
        assert_eq!(pictures.trace_at(1), &[4.0, 5.0, 6.0, 7.0]);
        assert!(pictures.trace_at(2).is_empty());
    }
}
