"""Interop tests: real peer implementations (Apache Dubbo Java, Go, Node, ZooKeeper, official Nacos/Eureka/Kubernetes clients, Caucho hessian)."""
