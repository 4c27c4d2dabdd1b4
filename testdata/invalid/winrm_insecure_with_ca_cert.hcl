host "web2" {
  address = "web2.example.internal"
  winrm {
    https    = true
    insecure = true
    ca_cert  = "../../examples/certs/ca.pem"
    user     = "deploy"
    password = var.pw
  }
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
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

# ERROR: 5:16 insecure with ca_cert
