//! The canary's weights say what the cluster runs.
//!
//! Without a traffic router, Argo Rollouts turns `setWeight` into a number
//! of pods: the whole number nearest to the weight's share of the replicas
//! (a tie rounds up), and each pod then gets an equal share of requests. So
//! `setWeight: 20` with 3 replicas is one pod in three, a third of the users.
//! The replicas are the HPA's to choose, so every weight between 0 and 100
//! must be the share it names (within one percentage point, setWeight being
//! a whole percent) at both of each overlay's HPA bounds.

use serde_json::Value;

use crate::render::{Render, Renders, Target, autoscaler_of, check_each, items_at, str_at};

/// How far, in percentage points, the pods' share may be from the weight.
const TOLERANCE: f64 = 1.0;

pub fn check(renders: &Renders) -> anyhow::Result<()> {
    check_each(renders.of(Target::Overlay), check_render)
}

fn check_render(render: &Render) -> Vec<String> {
    let mut errors = Vec::new();
    for rollout in render
        .docs
        .iter()
        .filter(|d| str_at(d, "/kind") == "Rollout")
    {
        if rollout
            .pointer("/spec/strategy/canary/trafficRouting")
            .is_some()
        {
            continue;
        }
        let name = str_at(rollout, "/metadata/name");
        let bounds: Vec<u64> = autoscaler_of(&render.docs, name)
            .map(|hpa| {
                ["/spec/minReplicas", "/spec/maxReplicas"]
                    .iter()
                    .filter_map(|p| hpa.pointer(p).and_then(Value::as_u64))
                    .collect()
            })
            .unwrap_or_else(|| {
                let replicas = rollout.pointer("/spec/replicas").and_then(Value::as_u64);
                vec![replicas.unwrap_or(1)]
            });
        let weights = items_at(rollout, "/spec/strategy/canary/steps")
            .filter_map(|s| s.get("setWeight").and_then(Value::as_u64))
            .filter(|w| (1..100).contains(w));
        for weight in weights {
            for &replicas in &bounds {
                let pods = canary_pods(weight, replicas);
                let share = percent(pods, replicas);
                if (share - weight as f64).abs() > TOLERANCE {
                    errors.push(format!(
                        "{}: Rollout/{name} setWeight {weight} runs {pods} of {replicas} pods \
                         ({share:.0}%) with no traffic router; choose weights that are whole \
                         pods at the HPA bounds, or bounds that fit the weights",
                        render.name
                    ));
                }
            }
        }
    }
    errors
}

/// The canary pods Argo Rollouts runs for `weight`% of `replicas`: the
/// nearest whole number, a tie rounded up.
fn canary_pods(weight: u64, replicas: u64) -> u64 {
    (weight * replicas * 2 + 100) / 200
}

fn percent(pods: u64, replicas: u64) -> f64 {
    if replicas == 0 {
        return 0.0;
    }
    pods as f64 * 100.0 / replicas as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(weights: &[u64], min: u64, max: u64) -> Render {
        let steps: Vec<Value> = weights
            .iter()
            .flat_map(|w| {
                [
                    json!({"setWeight": w}),
                    json!({"pause": {"duration": "2m"}}),
                ]
            })
            .collect();
        Render {
            name: "overlay/staging".to_owned(),
            target: Target::Overlay,
            file: "unused".into(),
            docs: vec![
                json!({"kind": "Rollout", "metadata": {"name": "todo-app"},
                       "spec": {"strategy": {"canary": {"steps": steps}}}}),
                json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "todo-app"},
                       "spec": {"scaleTargetRef": {"kind": "Rollout", "name": "todo-app"},
                                "minReplicas": min, "maxReplicas": max}}),
            ],
        }
    }

    #[test]
    fn thirds_at_multiples_of_three_are_what_they_say() {
        assert_eq!(
            check_render(&render(&[33, 67, 100], 3, 6)),
            Vec::<String>::new()
        );
        assert_eq!(
            check_render(&render(&[33, 67, 100], 6, 12)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn twenty_percent_of_three_pods_is_reported_as_the_third_it_is() {
        let errors = check_render(&render(&[20, 50, 100], 3, 10));
        assert_eq!(
            errors[0],
            "overlay/staging: Rollout/todo-app setWeight 20 runs 1 of 3 pods (33%) with no \
             traffic router; choose weights that are whole pods at the HPA bounds, or bounds \
             that fit the weights"
        );
        // 50% of 3 is 2 pods (67%); 20% and 50% of 10 are exact.
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn the_nearest_pod_count_wins_and_a_tie_rounds_up() {
        assert_eq!(canary_pods(41, 10), 4);
        assert_eq!(canary_pods(25, 2), 1);
        assert_eq!(canary_pods(33, 6), 2);
        assert_eq!(canary_pods(67, 4), 3);
        assert_eq!(canary_pods(10, 3), 0);
    }

    #[test]
    fn a_traffic_router_makes_weights_a_share_of_requests() {
        let mut render = render(&[20], 3, 3);
        render.docs[0]["spec"]["strategy"]["canary"]["trafficRouting"] = json!({"nginx": {}});
        assert_eq!(check_render(&render), Vec::<String>::new());
    }
}
