module gallery-operator.dev/cluster/pause

go 1.24.0
