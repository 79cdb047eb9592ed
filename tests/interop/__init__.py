"""Interop tests: the gateway and our codecs against real peer implementations (Apache Dubbo
Java 2.7/3.3, Go, dubbo-node, sofa-rpc-node, dubbo-python, grpcio, ZooKeeper, Caucho and
hessian.js), and our emulators proven with the official Nacos/Eureka/Kubernetes clients."""
