host "web2" {
  address = "web2.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
    ca_cert  = "../../examples/certs/ca.pem"
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

# ERROR: 6:16 ca_cert without HTTPS
