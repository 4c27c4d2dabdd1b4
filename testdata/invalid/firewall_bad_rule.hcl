service "api" {
  hosts  = ["web1"]
  binary = build.app
  firewall {
    ports            = [8080, "9010-9000"]
    protocol         = "icmp"
    profiles         = ["domain", "home"]
    remote_addresses = ["10.0.0.0/8", "10.0.0.300"]
  }
}

host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 5:24 Invalid port
# ERROR: 6:24 Invalid protocol
# ERROR: 7:24 Invalid firewall profile
# ERROR: 8:24 Invalid remote address
