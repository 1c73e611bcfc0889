module ebbflow.dev/infra/kube/spo

go 1.26.0

// The Security Profiles Operator's module carries its CRDs (deploy/base-crds/crds); nothing
// here is built from it. go.sum pins the download.
require sigs.k8s.io/security-profiles-operator v0.10.0
